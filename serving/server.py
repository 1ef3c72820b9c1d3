"""A TF Serving-compatible endpoint (gRPC, and REST on --rest_api_port) for development and tests.

    python -m serving.server --model-base-path <output>/serving/eurosat --model-name eurosat --port 8500
    python -m serving.server --model_config_file serving/models.config --port 8500 --rest_api_port 8501 \\
        --enable_batching --batching_parameters_file serving/batching_parameters.txt

Production runs the official tensorflow/serving image (see serving/docker-compose.yml); this
server exists because ``tensorflow_model_server`` cannot be installed everywhere. It speaks the
same protocols (tensorflow_serving.apis: PredictionService.Predict / Classify / GetModelMetadata
and ModelService.GetModelStatus; TF Serving's REST API, serving/rest.py), reads the same
configuration files (``--model_config_file``, ``--batching_parameters_file``), and follows the
same rules over the Pusher's directory:

- versions are the numeric sub-directories of a model's base path; which are served is the
  model's ``model_version_policy`` (default: the newest, ``latest { num_versions: 1 }``); the
  directory is polled, so a new push is loaded while the previous version keeps answering, and a
  deleted version is unloaded (the newest remaining one is served);
- a version is complete once its ``saved_model.pb`` exists: the Pusher copies that file last, so a
  half-copied version is never loaded; a load that still fails (``variables/`` arriving after
  ``saved_model.pb``, as some copy tools do) is retried whenever the version's files change;
- the version's ``assets.extra/tf_serving_warmup_requests`` are replayed before it is served;
- every request is bounded whether batching is on or not: at most --max_request_rows rows and
  --max_request_decoded_bytes of input tensors (serving.contract declares the defaults with the
  message, body and REST connection limits);
- with ``--monitoring_config_file`` (TF Serving's MonitoringConfig text file), TF Serving's
  Prometheus metrics are served on the REST port (serving.monitoring); with
  ``--enable_grpc_healthcheck_service``, gRPC's health service (serving.health);
- errors carry TF Serving's gRPC status codes (NOT_FOUND for an unknown model or version,
  INVALID_ARGUMENT for bad input, FAILED_PRECONDITION for an unknown signature, RESOURCE_EXHAUSTED
  for an over-size message from gRPC itself, UNAVAILABLE for a full batching queue).
"""
from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

import argparse
import logging
import threading
from concurrent import futures
from typing import TYPE_CHECKING, List, Optional

from serving import batching, contract
from serving.limits import RequestLimits

if TYPE_CHECKING:  # gRPC, TensorFlow and the models load in the functions: --help and flag errors first
    from tensorflow_serving.config import model_server_config_pb2

    from serving.models import ServedModel

log = logging.getLogger("serving.server")  # one logger for the dev server's modules

DEFAULT_MAX_MESSAGE_BYTES = contract.MAX_MESSAGE_BYTES


class ModelServer:
    """The gRPC server (and the REST server, when given a port) plus the version poller."""

    def __init__(
        self,
        model_base_path: Optional[str] = None,
        model_name: str = contract.MODEL_NAME,
        port: int = 8500,
        host: str = "localhost",
        poll_seconds: float = 1.0,
        max_workers: int = 64,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        rest_api_port: Optional[int] = None,
        batching_parameters: Optional[batching.BatchingParameters] = None,
        model_config: Optional[model_server_config_pb2.ModelServerConfig] = None,
        limits: Optional[RequestLimits] = None,
        rest_api_num_threads: int = contract.REST_API_NUM_THREADS,
        rest_api_timeout_in_ms: int = contract.REST_API_TIMEOUT_MS,
        prometheus_path: Optional[str] = None,
        enable_grpc_healthcheck_service: bool = False,
    ):
        import grpc
        from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

        from serving.core import ServingCore
        from serving.grpc_api import ModelService, PredictionService
        from serving.models import single_model_config

        if model_config is None:
            if model_base_path is None:
                raise ValueError("give a model base path or a model config")
            model_config = single_model_config(model_name, model_base_path)
        self.core = ServingCore(model_config, batching_parameters, limits)
        self.poll_seconds = poll_seconds
        self._stop = threading.Event()
        # Both ports are bound here, before start() loads any model: a taken one is refused at once.
        self._rest = None
        if prometheus_path is not None and rest_api_port is None:
            raise ValueError("the monitoring config's Prometheus page is served on the REST port: "
                             "give --rest_api_port with --monitoring_config_file")
        if rest_api_port is not None:
            from serving import rest

            self._rest = rest.RestServer(self.core, host, rest_api_port, max_message_bytes,
                                         rest_api_num_threads, rest_api_timeout_in_ms, prometheus_path)
        self._grpc = grpc.server(
            futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="serving"),
            options=[
                ("grpc.max_receive_message_length", max_message_bytes),
                ("grpc.max_send_message_length", max_message_bytes),
                ("grpc.so_reuseport", 0),  # gRPC's default (1) lets a second server share the port
            ],
        )
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(self.core), self._grpc)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(self.core), self._grpc)
        self.health = None
        if enable_grpc_healthcheck_service:
            from serving.health import HealthService

            self.health = HealthService(self.core)
            self._grpc.add_generic_rpc_handlers((self.health.handler(),))
        try:
            self.port = self._grpc.add_insecure_port(f"{host}:{port}")
        except RuntimeError:  # grpcio >= 1.4x raises where older ones returned 0
            self.port = 0
        if self.port == 0:
            if self._rest is not None:
                self._rest.stop()
            raise OSError(f"cannot listen on {host}:{port} for gRPC (--port): the port is in use "
                          "(is another server running there?) or the address is not this machine's; "
                          "pick another --port")
        self._poller = threading.Thread(target=self._poll_loop, name="version-poller", daemon=True)

    @property
    def model(self) -> ServedModel:
        """The served model, when there is one (the single-model command line)."""
        (model,) = self.core.models.values()
        return model

    @property
    def rest_port(self) -> Optional[int]:
        return None if self._rest is None else self._rest.port

    @property
    def prometheus_path(self) -> Optional[str]:
        """The REST path of the Prometheus metrics page (None: not served)."""
        return None if self._rest is None else self._rest.prometheus_path

    def start(self) -> "ModelServer":
        self.core.poll()  # the first versions are loaded before the ports answer
        self._grpc.start()
        if self._rest is not None:
            self._rest.start()
        self._poller.start()
        return self

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.core.poll()
            except Exception:  # e.g. the base path vanished for a moment
                log.exception("polling the model base paths failed")

    def stop(self, grace: float = 1.0) -> None:
        self._stop.set()
        if self.health is not None:
            self.health.enter_graceful_shutdown()
        if self._rest is not None:
            self._rest.stop()
        self._grpc.stop(grace).wait()
        self.core.stop()

    def wait(self) -> None:
        self._grpc.wait_for_termination()


def _flag(parser: argparse.ArgumentParser, name: str, **kwargs) -> None:
    """A flag under the project's spelling (--model-base-path) and TF Serving's (--model_base_path)."""
    parser.add_argument(f"--{name}", f"--{name.replace('_', '-')}", **kwargs)


def _bool(value: str) -> bool:
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m serving.server", description=__doc__.split("\n\n")[0])
    _flag(parser, "model_base_path", help="directory holding <version>/ SavedModels")
    _flag(parser, "model_name", default=contract.MODEL_NAME)
    _flag(parser, "model_config_file",
          help="a ModelServerConfig text file (serving/models.config): several models, version policies, labels")
    parser.add_argument("--port", type=int, default=8500, help="gRPC port (0: any free port)")
    _flag(parser, "rest_api_port", type=int, default=None,
          help="serve TF Serving's REST API on this port too (0: any free port; default: no REST)")
    parser.add_argument("--host", default="localhost", help="address to bind; 0.0.0.0 exposes it to the network")
    _flag(parser, "enable_batching", type=_bool, nargs="?", const=True, default=False,
          help="merge concurrent requests into batches (TF Serving's server-side batching)")
    _flag(parser, "batching_parameters_file", help="BatchingParameters text file (serving/batching_parameters.txt)")
    _flag(parser, "monitoring_config_file",
          help="a MonitoringConfig text file (serving/monitoring_config.txt, TF Serving's format): "
               "prometheus_config { enable: true } serves TF Serving's metrics on the REST port")
    _flag(parser, "enable_grpc_healthcheck_service", type=_bool, nargs="?", const=True, default=False,
          help="serve gRPC's health service (grpc.health.v1.Health) on the gRPC port")
    _flag(parser, "poll_seconds", type=float, default=1.0, help="how often to look for new versions")
    _flag(parser, "max_workers", type=int, default=64, help="concurrent gRPC requests")
    _flag(parser, "max_message_bytes", type=int, default=DEFAULT_MAX_MESSAGE_BYTES,
          help="largest gRPC message and REST body")
    _flag(parser, "max_request_rows", type=int, default=contract.MAX_REQUEST_ROWS,
          help="rows (images, examples) one request may hold, batching on or off")
    _flag(parser, "max_request_decoded_bytes", type=int, default=contract.MAX_REQUEST_DECODED_BYTES,
          help="bytes of one request's input tensors once decoded from JSON, base64 or protobuf")
    _flag(parser, "rest_api_num_threads", type=int, default=contract.REST_API_NUM_THREADS,
          help="REST connections served at once (more wait in the listen backlog)")
    _flag(parser, "rest_api_timeout_in_ms", type=int, default=contract.REST_API_TIMEOUT_MS,
          help="a REST connection silent this long (idle, or sending a request too slowly) is closed")
    _flag(parser, "tensorflow_intra_op_parallelism", type=int, default=0,
          help="threads one op may use (0: TensorFlow's choice, all cores); 1 with "
               "num_batch_threads = cores serves concurrent clients fastest on CPU")
    _flag(parser, "tensorflow_inter_op_parallelism", type=int, default=0,
          help="ops run at once (0: TensorFlow's choice)")
    args = parser.parse_args(argv)
    if min(args.tensorflow_intra_op_parallelism, args.tensorflow_inter_op_parallelism) < 0:
        parser.error("--tensorflow_intra_op_parallelism and --tensorflow_inter_op_parallelism must be >= 0")
    for name in ("max_message_bytes", "max_request_rows", "max_request_decoded_bytes", "rest_api_num_threads",
                 "rest_api_timeout_in_ms"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(args, name)}")
    if args.model_config_file is None and args.model_base_path is None:
        parser.error("give --model-base-path (one model) or --model_config_file")
    if args.batching_parameters_file and not args.enable_batching:
        parser.error("--batching_parameters_file needs --enable_batching (as in TF Serving)")
    if args.monitoring_config_file and args.rest_api_port is None:
        parser.error("--monitoring_config_file serves the metrics on the REST port: give --rest_api_port too")
    return args


def set_tensorflow_threads(intra_op: int, inter_op: int) -> None:
    """TF Serving's --tensorflow_{intra,inter}_op_parallelism (0 keeps TensorFlow's default)."""
    import tensorflow as tf

    try:
        if intra_op:
            tf.config.threading.set_intra_op_parallelism_threads(intra_op)
        if inter_op:
            tf.config.threading.set_inter_op_parallelism_threads(inter_op)
    except RuntimeError:  # TensorFlow ran an op in this process already
        raise ValueError(
            "the TensorFlow thread counts can only be set before the first model loads; "
            "start a new server process with --tensorflow_intra_op_parallelism"
        ) from None


def server_from_args(args: argparse.Namespace) -> ModelServer:
    from serving.models import read_model_config, with_base_path

    set_tensorflow_threads(args.tensorflow_intra_op_parallelism, args.tensorflow_inter_op_parallelism)
    config = None
    if args.model_config_file:
        config = read_model_config(args.model_config_file)
        if args.model_base_path:  # e.g. the production models.config over a local push directory
            config = with_base_path(config, args.model_name, args.model_base_path)
    prometheus_path = None
    if args.monitoring_config_file:
        from serving.monitoring import read_monitoring_config

        prometheus_path = read_monitoring_config(args.monitoring_config_file)
    params = None
    if args.enable_batching:
        params = (batching.read_batching_parameters(args.batching_parameters_file)
                  if args.batching_parameters_file else batching.BatchingParameters())
    return ModelServer(
        args.model_base_path, args.model_name, args.port, args.host, args.poll_seconds, args.max_workers,
        args.max_message_bytes, args.rest_api_port, params, config,
        RequestLimits(args.max_request_rows, args.max_request_decoded_bytes),
        args.rest_api_num_threads, args.rest_api_timeout_in_ms, prometheus_path,
        args.enable_grpc_healthcheck_service,
    )


def main(argv: Optional[List[str]] = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = parse_args(argv)
    try:
        server = server_from_args(args).start()
    except (ValueError, OSError) as err:
        raise SystemExit(f"error: {err}") from None
    names = ", ".join(repr(n) for n in server.core.models)
    notes = []
    if args.enable_batching:
        notes.append("batching on")
    if args.tensorflow_intra_op_parallelism or args.tensorflow_inter_op_parallelism:
        import tensorflow as tf

        threads = tf.config.threading
        notes.append(f"TensorFlow threads: intra-op {threads.get_intra_op_parallelism_threads()}, "
                     f"inter-op {threads.get_inter_op_parallelism_threads()}")
    if server.rest_port is not None:
        notes.append(f"REST on {args.host}:{server.rest_port}")
    if server.prometheus_path is not None:
        notes.append(f"metrics on {server.prometheus_path}")
    if server.health is not None:
        notes.append("gRPC health service on")
    noted = f" ({'; '.join(notes)})" if notes else ""
    # tests and scripts read this line to learn the ports (with --port 0)
    print(f"serving models {names}{noted} on {args.host}:{server.port}", flush=True)
    try:
        server.wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
