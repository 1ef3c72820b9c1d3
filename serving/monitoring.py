"""TF Serving's monitoring in the dev server: its metrics, under its names, on its Prometheus endpoint.

    python -m serving.server ... --rest_api_port 8501 --monitoring_config_file serving/monitoring_config.txt
    curl localhost:8501/monitoring/prometheus/metrics

The metrics are TF Serving's (names, labels, units, buckets, and which requests feed them), so the
dashboards and alerts written for ``tensorflow_model_server`` read the dev server unchanged:

- ``:tensorflow:serving:request_count{model_name, status}``: every gRPC Predict / Classify and
  every REST request under ``/v1/`` (model status and metadata included, as TF Serving counts
  them), ``status`` being the gRPC code's name (``OK``, ``INVALID_ARGUMENT``, ``NOT_FOUND``, ...);
- ``:tensorflow:serving:request_latency{model_name, API, entrypoint}``: a histogram, in
  microseconds, of the requests that succeeded; ``API`` is ``Predict`` / ``Classify`` on gRPC and
  the REST verb (``predict``, ``classify``; empty for a GET) on REST, ``entrypoint`` ``GRPC`` or
  ``REST``;
- ``:tensorflow:serving:batching_session:queuing_latency{thread_pool_name}``: microseconds each
  request waited in the batching queue (``--enable_batching``); TF Serving's model server names
  no thread pool, so the label is empty there and here.

Names, label names and buckets are declared below once, for the gRPC and REST front ends and the
batcher alike; prometheus-client keeps the values and writes the text format. One difference is
forced by prometheus-client: its text format names a counter ``<name>_total``, so the request
count is exported under TF Serving's name as an untyped metric (queries read it the same way:
``rate(:tensorflow:serving:request_count[5m])``).

Which endpoint is served comes from TF Serving's own MonitoringConfig text file
(``prometheus_config { enable: true, path: "..." }``; no path means TF Serving's default,
PROMETHEUS_PATH), the same file the production manifests pass to ``tensorflow_model_server``.
"""
from __future__ import annotations

import re
from typing import Iterator, Optional, Tuple

from google.protobuf import text_format
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4, Counter, Histogram, generate_latest
from prometheus_client.core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

from serving import contract, protos

PROMETHEUS_PATH = contract.PROMETHEUS_PATH  # where the metrics are when the config names no path
# The classic text format (TF Serving answers text/plain), which every Prometheus reads; the page's
# names are legacy ones (colons, no UTF-8), so it is that format exactly.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

# Entry points and gRPC API names as TF Serving labels them (model_servers/prediction_service_impl.cc,
# http_server.cc); a REST request's API is its verb.
GRPC, REST = "GRPC", "REST"
PREDICT, CLASSIFY = "Predict", "Classify"


def exponential_buckets(scale: float, growth: float, count: int) -> Tuple[float, ...]:
    """TensorFlow's monitoring::Buckets::Exponential, as TF Serving's exporter writes them.

    TensorFlow's monitoring::Buckets::Exponential: scale * growth**i, i < count (then +Inf), to the 6 significant
    digits TF Serving's exporter writes them with (le="32.4", le="188.957").
    """
    return tuple(float(f"{scale * growth ** i:.6g}") for i in range(count))


def prometheus_name(name: str) -> str:
    """A TensorFlow metric's name as TF Serving's Prometheus exporter writes it.

    Every character outside [a-zA-Z0-9_] becomes ':': /tensorflow/serving/request_count ->
    :tensorflow:serving:request_count.
    """
    name = re.sub(r"[^a-zA-Z0-9_]", ":", name)
    return f"_{name}" if name[:1].isdigit() else name


# TF Serving's metrics: tensorflow_serving/servables/tensorflow/util.cc and batching/batching_session.cc.
REQUEST_COUNT = "/tensorflow/serving/request_count"
REQUEST_COUNT_LABELS = ("model_name", "status")
REQUEST_LATENCY = "/tensorflow/serving/request_latency"
REQUEST_LATENCY_LABELS = ("model_name", "API", "entrypoint")
REQUEST_LATENCY_BUCKETS = exponential_buckets(10, 1.8, 33)  # microseconds, 10 us to ~24 min
QUEUING_LATENCY = "/tensorflow/serving/batching_session/queuing_latency"
QUEUING_LATENCY_LABELS = ("thread_pool_name",)
QUEUING_LATENCY_BUCKETS = exponential_buckets(100, 1.2, 52)  # microseconds, 100 us to ~1 s
THREAD_POOL_NAME = ""  # the model server's batching sessions are created with no thread pool name


class ServerMetrics(Collector):
    """The dev server's metrics (one set per server, so servers in one process do not mix them)."""

    def __init__(self) -> None:
        self._count = Counter(prometheus_name(REQUEST_COUNT), "The total number of requests.",
                              REQUEST_COUNT_LABELS, registry=None)
        self._latency = Histogram(
            prometheus_name(REQUEST_LATENCY),
            "Distribution of wall time (in microseconds) for Tensorflow Serving request.",
            REQUEST_LATENCY_LABELS, registry=None, buckets=REQUEST_LATENCY_BUCKETS)
        self._queuing = Histogram(
            prometheus_name(QUEUING_LATENCY), "Distribution of wall time spent (in microseconds) in queuing",
            QUEUING_LATENCY_LABELS, registry=None, buckets=QUEUING_LATENCY_BUCKETS)
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(self)

    def request(self, model_name: str, status: str, api: str, entrypoint: str, seconds: float) -> None:
        """One request answered with the gRPC status `status` ('OK', 'NOT_FOUND', ...).

        Its latency is recorded when it succeeded (TF Serving records no latency for failed requests).
        """
        self._count.labels(model_name, status).inc()
        if status == "OK":
            self._latency.labels(model_name, api, entrypoint).observe(seconds * 1e6)

    def queued(self, seconds: float) -> None:
        """A request left the batching queue after `seconds` there."""
        self._queuing.labels(THREAD_POOL_NAME).observe(seconds * 1e6)

    def collect(self) -> Iterator[Metric]:
        """The metrics under TF Serving's names (prometheus-client's Collector interface)."""
        for family in self._count.collect():  # TF Serving's name, not prometheus-client's <name>_total
            count = Metric(family.name, family.documentation, "unknown")
            for sample in family.samples:
                if sample.name == f"{family.name}_total":
                    count.add_sample(family.name, sample.labels, sample.value)
            yield count
        for histogram in (self._latency, self._queuing):
            for family in histogram.collect():
                family.samples = [s for s in family.samples if not s.name.endswith("_created")]
                yield family

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric (content type CONTENT_TYPE)."""
        page: bytes = generate_latest(self._registry)
        return page


def parse_monitoring_config(text: str, source: str = "the monitoring config") -> Optional[str]:
    """The Prometheus endpoint's path a MonitoringConfig text proto asks for, or None.

    When Prometheus is not enabled.
    """
    try:
        config = text_format.Parse(text, protos.MonitoringConfig())
    except text_format.ParseError as err:
        raise ValueError(f"{source} is not a MonitoringConfig text proto ({err}); expected e.g. "
                         f'prometheus_config {{ enable: true path: "{PROMETHEUS_PATH}" }}') from None
    prometheus = config.prometheus_config
    if not prometheus.enable:
        return None
    path = prometheus.path or PROMETHEUS_PATH
    if not path.startswith("/") or path.lower().startswith("/v1/") or "?" in path:
        raise ValueError(f"{source}: prometheus_config path {path!r} must be an absolute URL path outside "
                         f"the REST API's /v1/ (TF Serving's default is {PROMETHEUS_PATH!r})")
    return path


def read_monitoring_config(path: str) -> Optional[str]:
    """TF Serving's --monitoring_config_file: the Prometheus path it enables, or None."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError as err:
        raise ValueError(f"cannot read the monitoring config file {path!r} (--monitoring_config_file): "
                         f"{err.strerror}") from None
    return parse_monitoring_config(text, f"the monitoring config file {path!r}")
