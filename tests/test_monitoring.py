"""Monitoring as TF Serving does it: the dev server's Prometheus page (TF Serving's metric names,
labels and buckets), gRPC's health service, and the production manifests that turn both on."""
import base64
import http.client
import json
import os
import shutil
import subprocess

import grpc
import pytest
import tensorflow as tf
import yaml
from prometheus_client.parser import text_string_to_metric_families
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc

from schema.example_data import synthetic
from serving import contract, monitoring, protos, signatures
from serving import server as serving_server
from tests import serving_fixtures

MODEL = serving_fixtures.MODEL_NAME
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SERVING = os.path.join(REPO, "serving")
MONITORING_CONFIG = os.path.join(SERVING, contract.MONITORING_CONFIG_FILE)
COUNT = ":tensorflow:serving:request_count"
LATENCY = ":tensorflow:serving:request_latency"
QUEUING = ":tensorflow:serving:batching_session:queuing_latency"


@pytest.fixture(scope="module")
def images():
    return [jpeg for jpeg, _, _ in synthetic.synthetic_examples(3, seed=5)]


def _server(base_path, **kwargs):
    return serving_fixtures.model_server(model_base_path=str(base_path), rest_api_port=0, poll_seconds=0.2,
                                         **kwargs).start()


def _http(port, method, path, body=None):
    connection = http.client.HTTPConnection("localhost", port, timeout=30)
    try:
        connection.request(method, path, body=None if body is None else json.dumps(body).encode())
        reply = connection.getresponse()
        return reply.status, reply.getheader("Content-Type"), reply.read()
    finally:
        connection.close()


def _predict(stub, images, signature=signatures.PREDICT_IMAGES, name=MODEL):
    request = predict_pb2.PredictRequest()
    request.model_spec.name, request.model_spec.signature_name = name, signature
    request.inputs[contract.IMAGES_INPUT].CopyFrom(tf.make_tensor_proto(images, dtype=tf.string))
    return stub.Predict(request)


def _samples(page: str):
    """{(sample name, sorted labels): value} of a Prometheus text page, read by prometheus-client's parser."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(page) for s in family.samples}


# --- the Prometheus page --------------------------------------------------------------------------
def test_scrape_after_good_and_bad_requests_shows_tf_serving_counts_and_latencies(exported, images):
    """gRPC and REST requests, good and bad, then one scrape: the counts by status, the latency
    histograms of the good ones by API and entry point, and the batching queue's waits."""
    server = _server(exported.model_base_path, enable_batching=True,
                     batching_parameters_file=os.path.join(SERVING, "batching_parameters.txt"),
                     monitoring_config_file=MONITORING_CONFIG)
    try:
        channel = grpc.insecure_channel(f"localhost:{server.port}")
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        for _ in range(2):
            assert _predict(stub, images).outputs[contract.PROBABILITIES].tensor_shape.dim[0].size == 3
        with pytest.raises(grpc.RpcError) as bad:  # an unknown signature: refused before the batcher
            _predict(stub, images, signature="nope")
        assert bad.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        with pytest.raises(grpc.RpcError) as missing:
            _predict(stub, images, name="other")
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        channel.close()
        good = {"signature_name": signatures.PREDICT_IMAGES,
                "instances": [{"b64": base64.b64encode(images[0]).decode()}]}
        assert _http(server.rest_port, "POST", f"/v1/models/{MODEL}:predict", good)[0] == 200
        assert _http(server.rest_port, "POST", f"/v1/models/{MODEL}:predict", {"instances": "x"})[0] == 400
        assert _http(server.rest_port, "GET", f"/v1/models/{MODEL}")[0] == 200

        status, content_type, page = _http(server.rest_port, "GET", contract.PROMETHEUS_PATH)
    finally:
        server.stop()
    assert status == 200 and content_type.startswith("text/plain; version=0.0.4"), (status, content_type)
    page = page.decode()
    samples = _samples(page)
    # request_count{model_name, status}: TF Serving's name (no _total) and gRPC code names
    assert f"# TYPE {COUNT} " in page and f"{COUNT}_total" not in page
    counts = {dict(labels)["status"] + "/" + dict(labels)["model_name"]: value
              for (name, labels), value in samples.items() if name == COUNT}
    assert counts == {"OK/eurosat": 4, "FAILED_PRECONDITION/eurosat": 1, "NOT_FOUND/other": 1,
                      "INVALID_ARGUMENT/eurosat": 1}, counts
    # request_latency{model_name, API, entrypoint}: the successful requests only, in microseconds
    latency_counts = {(dict(labels)["API"], dict(labels)["entrypoint"]): value
                      for (name, labels), value in samples.items() if name == f"{LATENCY}_count"}
    assert latency_counts == {("Predict", "GRPC"): 2, ("predict", "REST"): 1, ("", "REST"): 1}, latency_counts
    grpc_labels = (("API", "Predict"), ("entrypoint", "GRPC"), ("model_name", MODEL))
    buckets = sorted((float(dict(labels)["le"]), value) for (name, labels), value in samples.items()
                     if name == f"{LATENCY}_bucket" and tuple(kv for kv in labels if kv[0] != "le") == grpc_labels)
    assert [le for le, _ in buckets[:3]] == [10.0, 18.0, 32.4]  # TF Serving's Exponential(10, 1.8, 33)
    assert len(buckets) == 34 and buckets[-1] == (float("inf"), 2)
    assert all(a[1] <= b[1] for a, b in zip(buckets, buckets[1:]))
    assert 1e3 < samples[(f"{LATENCY}_sum", grpc_labels)] / 2 < 60e6  # a predict takes ms, not us or minutes
    # batching_session:queuing_latency: each of the 3 requests that reached the batcher, once
    assert samples[(f"{QUEUING}_count", (("thread_pool_name", ""),))] == 3
    assert not any(name.endswith("_created") for name, _ in samples)


def test_the_metrics_page_is_where_the_config_says_and_only_there(tmp_path):
    config = tmp_path / "monitoring.txt"
    config.write_text('prometheus_config: { enable: true, path: "/metrics" }\n')  # TF Serving's testdata style
    server = _server(tmp_path / "none", monitoring_config_file=str(config))
    try:
        assert _http(server.rest_port, "GET", "/metrics")[0] == 200
        status, _, body = _http(server.rest_port, "GET", contract.PROMETHEUS_PATH)
        assert status == 404 and b"/v1/models" in body
    finally:
        server.stop()
    server = _server(tmp_path / "none")  # no monitoring config: no page, and the answer says why
    try:
        status, _, body = _http(server.rest_port, "GET", contract.PROMETHEUS_PATH)
        assert status == 404 and b"--monitoring_config_file" in body
    finally:
        server.stop()


def test_monitoring_config_files_are_read_as_tf_serving_reads_them(tmp_path):
    assert monitoring.read_monitoring_config(MONITORING_CONFIG) == contract.PROMETHEUS_PATH
    assert monitoring.parse_monitoring_config("prometheus_config { enable: true }") == contract.PROMETHEUS_PATH
    assert monitoring.parse_monitoring_config("prometheus_config { enable: false path: '/m' }") is None
    assert monitoring.parse_monitoring_config("") is None
    for text, says in (("prometheus { enable: true }", "not a MonitoringConfig"),
                       ("prometheus_config { enable: true path: 'v1/m' }", "absolute URL path"),
                       ("prometheus_config { enable: true path: '/v1/models' }", "outside the REST API")):
        with pytest.raises(ValueError, match=says):
            monitoring.parse_monitoring_config(text)
    with pytest.raises(ValueError, match="cannot read the monitoring config file .*--monitoring_config_file"):
        monitoring.read_monitoring_config(str(tmp_path / "missing.txt"))


def test_bad_monitoring_flags_get_one_line_errors(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        serving_server.main(["--model-base-path", str(tmp_path), "--port", "0", "--rest_api_port", "0",
                             "--monitoring_config_file", str(tmp_path / "missing.txt")])
    assert str(exit_.value).startswith("error: cannot read the monitoring config file") and "\n" not in str(exit_.value)
    with pytest.raises(SystemExit):
        serving_server.parse_args(["--model-base-path", str(tmp_path), "--monitoring_config_file", MONITORING_CONFIG])
    assert "give --rest_api_port too" in capsys.readouterr().err


def test_metric_names_are_tf_servings_as_its_exporter_writes_them():
    assert monitoring.prometheus_name(monitoring.REQUEST_COUNT) == COUNT
    assert monitoring.prometheus_name(monitoring.REQUEST_LATENCY) == LATENCY
    assert monitoring.prometheus_name(monitoring.QUEUING_LATENCY) == QUEUING
    assert monitoring.QUEUING_LATENCY_BUCKETS[:3] == (100.0, 120.0, 144.0) and len(monitoring.QUEUING_LATENCY_BUCKETS) == 52


# --- gRPC health ---------------------------------------------------------------------------------
def _health(port):
    channel = grpc.insecure_channel(f"localhost:{port}")
    check = channel.unary_unary(f"/{protos.HEALTH_SERVICE}/Check",
                                request_serializer=protos.HealthCheckRequest.SerializeToString,
                                response_deserializer=protos.HealthCheckResponse.FromString)
    watch = channel.unary_stream(f"/{protos.HEALTH_SERVICE}/Watch",
                                 request_serializer=protos.HealthCheckRequest.SerializeToString,
                                 response_deserializer=protos.HealthCheckResponse.FromString)
    return channel, check, watch


def _status_name(response):
    return protos.HealthCheckResponse.ServingStatus.Name(response.status)


def test_health_messages_have_grpc_health_v1_wire_format():
    """Field numbers and enum values of grpc/health/v1/health.proto: service = 1, status = 1, SERVING = 1."""
    assert protos.HealthCheckRequest(service="eurosat").SerializeToString() == b"\n\x07eurosat"
    assert protos.HealthCheckResponse(status=protos.HealthCheckResponse.SERVING).SerializeToString() == b"\x08\x01"
    assert [v.name for v in protos.HealthCheckResponse.ServingStatus.DESCRIPTOR.values] == [
        "UNKNOWN", "SERVING", "NOT_SERVING", "SERVICE_UNKNOWN"]


def test_health_service_answers_serving_for_a_loaded_model_and_not_otherwise(exported, tmp_path):
    base = tmp_path / MODEL
    server = _server(base, enable_grpc_healthcheck_service=True)  # nothing pushed yet
    channel, check, watch = _health(server.port)
    try:
        for service in ("", "ModelService", "PredictionService"):  # the names TF Serving sets SERVING
            assert _status_name(check(protos.HealthCheckRequest(service=service))) == "SERVING"
        assert _status_name(check(protos.HealthCheckRequest(service=MODEL))) == "NOT_SERVING"
        with pytest.raises(grpc.RpcError) as unknown:
            check(protos.HealthCheckRequest(service="nope"))
        assert unknown.value.code() == grpc.StatusCode.NOT_FOUND and "'eurosat'" in unknown.value.details()
        assert _status_name(next(watch(protos.HealthCheckRequest(service="nope")))) == "SERVICE_UNKNOWN"

        stream = watch(protos.HealthCheckRequest(service=MODEL), timeout=60)
        assert _status_name(next(stream)) == "NOT_SERVING"
        base.mkdir()
        shutil.copytree(exported.export_dir, base / "1")  # a push: the poller loads it
        assert _status_name(next(stream)) == "SERVING"
        assert _status_name(check(protos.HealthCheckRequest(service=MODEL))) == "SERVING"
        server.health.enter_graceful_shutdown()  # what stop() does first
        assert _status_name(next(stream)) == "NOT_SERVING"
        assert _status_name(check(protos.HealthCheckRequest(service=""))) == "NOT_SERVING"
        stream.cancel()
    finally:
        channel.close()
        server.stop()


def test_health_service_is_off_unless_enabled(tmp_path):
    server = _server(tmp_path / "none")
    channel, check, _ = _health(server.port)
    try:
        with pytest.raises(grpc.RpcError) as off:
            check(protos.HealthCheckRequest())
        assert off.value.code() == grpc.StatusCode.UNIMPLEMENTED
    finally:
        channel.close()
        server.stop()
    assert serving_server.parse_args(["--model-base-path", "x", "--enable_grpc_healthcheck_service=true"]
                                     ).enable_grpc_healthcheck_service is True


# --- the production manifests ------------------------------------------------------------------
def _manifests():
    with open(os.path.join(SERVING, "docker-compose.yml")) as f:
        compose = yaml.safe_load(f)["services"]["tf-serving"]
    with open(os.path.join(SERVING, "kubernetes.yaml")) as f:
        deployment = next(yaml.safe_load_all(f))
    return compose, deployment["spec"]["template"]


MONITORING_FLAGS = ("--monitoring_config_file=/config/monitoring_config.txt", "--enable_grpc_healthcheck_service=true")


def test_manifests_turn_on_tf_serving_monitoring_and_probe_the_model_status_url():
    compose, pod = _manifests()
    container = pod["spec"]["containers"][0]
    for args in (compose["command"], container["args"]):
        assert set(MONITORING_FLAGS) <= set(args), args
    # the file the flag names is the repository's monitoring_config.txt, mounted where it says
    assert f"./{contract.MONITORING_CONFIG_FILE}:/config/{contract.MONITORING_CONFIG_FILE}:ro" in compose["volumes"]
    assert {"name": "config", "mountPath": "/config", "readOnly": True} in container["volumeMounts"]
    with open(os.path.join(SERVING, "kubernetes.yaml")) as f:
        assert f"--from-file=serving/{contract.MONITORING_CONFIG_FILE}" in f.read()  # into that ConfigMap
    # Prometheus finds the page the config enables, on the REST port
    annotations = pod["metadata"]["annotations"]
    assert annotations["prometheus.io/path"] == monitoring.read_monitoring_config(MONITORING_CONFIG)
    assert annotations["prometheus.io/port"] == "8501" and annotations["prometheus.io/scrape"] == "true"
    # every probe asks the model status URL on the REST port
    status_url = f"/v1/models/{contract.MODEL_NAME}"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": status_url, "port": "rest"}, probe
    assert status_url in compose["healthcheck"]["test"][-1] and "8501" in compose["healthcheck"]["test"][-1]
    # the dev server takes the same two flags and the same file
    args = serving_server.parse_args(["--model-base-path", "x", "--rest_api_port", "8501",
                                      *(a.replace("/config/", f"{SERVING}/") for a in MONITORING_FLAGS)])
    assert monitoring.read_monitoring_config(args.monitoring_config_file) == contract.PROMETHEUS_PATH
    assert args.enable_grpc_healthcheck_service is True


def test_compose_healthcheck_is_healthy_only_while_the_model_answers(exported, tmp_path):
    """The compose healthcheck's own command, run against the dev server's REST port."""
    compose, _ = _manifests()
    kind, shell, flag, command = compose["healthcheck"]["test"]
    assert (kind, shell, flag) == ("CMD", "bash", "-c")

    def healthy(port):
        return subprocess.run([shell, flag, command.replace("8501", str(port))], timeout=30).returncode == 0

    for base, expected in ((exported.model_base_path, True), (str(tmp_path / "none"), False)):
        server = _server(base)
        try:
            assert healthy(server.rest_port) is expected, base
        finally:
            server.stop()
