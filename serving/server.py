r"""A TF Serving-compatible endpoint (gRPC, and REST on --rest_api_port) for development and tests.

    python -m serving.server --model-base-path <output>/serving/eurosat --model-name eurosat --port 8500
    python -m serving.server --model_config_file serving/models.config --port 8500 --rest_api_port 8501 \
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

from serving.settings import ServerSettings, add_flags, parse_flags

if TYPE_CHECKING:  # gRPC, TensorFlow and the models load in the functions: --help and flag errors first
    from serving.core import ServingCore
    from serving.health import HealthService
    from serving.models import ServedModel
    from serving.rest import RestServer

log = logging.getLogger("serving.server")  # one logger for the dev server's modules


class ModelServer:
    """The gRPC server (and the REST server, when the settings give it a port) plus the version poller.

    Over `core`'s models. Both ports are bound here, before start() loads any model: a taken one is refused at once.
    serving.rest.RestServer takes the same two arguments.
    """

    def __init__(self, core: ServingCore, settings: ServerSettings) -> None:
        import grpc
        from tensorflow_serving.apis import model_service_pb2_grpc, prediction_service_pb2_grpc

        from serving.grpc_api import ModelService, PredictionService

        self.core, self.settings = core, settings
        self._stop = threading.Event()
        self._rest: Optional[RestServer] = None
        if settings.rest_api_port is not None:
            from serving import rest

            self._rest = rest.RestServer(core, settings)
        self._grpc = grpc.server(
            futures.ThreadPoolExecutor(max_workers=settings.max_workers, thread_name_prefix="serving"),
            options=[
                ("grpc.max_receive_message_length", settings.max_message_bytes),
                ("grpc.max_send_message_length", settings.max_message_bytes),
                ("grpc.so_reuseport", 0),  # gRPC's default (1) lets a second server share the port
            ],
        )
        prediction_service_pb2_grpc.add_PredictionServiceServicer_to_server(PredictionService(core), self._grpc)
        model_service_pb2_grpc.add_ModelServiceServicer_to_server(ModelService(core), self._grpc)
        self.health: Optional[HealthService] = None
        if settings.enable_grpc_healthcheck_service:
            from serving.health import HealthService

            self.health = HealthService(core)
            self._grpc.add_generic_rpc_handlers((self.health.handler(),))
        address = f"{settings.host}:{settings.port}"
        try:
            self.port: int = self._grpc.add_insecure_port(address)
        except RuntimeError:  # grpcio >= 1.4x raises where older ones returned 0
            self.port = 0
        if self.port == 0:
            if self._rest is not None:
                self._rest.stop()
            raise OSError(f"cannot listen on {address} for gRPC (--port): the port is in use "
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
        """The REST API's port (None: no REST)."""
        return None if self._rest is None else self._rest.port

    @property
    def prometheus_path(self) -> Optional[str]:
        """The REST path of the Prometheus metrics page (None: not served)."""
        return None if self._rest is None else self._rest.prometheus_path

    def start(self) -> ModelServer:
        """Load the first versions, then answer on the ports and poll for new versions."""
        self.core.poll()  # the first versions are loaded before the ports answer
        self._grpc.start()
        if self._rest is not None:
            self._rest.start()
        self._poller.start()
        return self

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.settings.poll_seconds):
            try:
                self.core.poll()
            except Exception:  # e.g. the base path vanished for a moment
                log.exception("polling the model base paths failed")

    def stop(self, grace: float = 1.0) -> None:
        """Stop answering (health first, then REST, then gRPC after `grace` seconds) and batching."""
        self._stop.set()
        if self.health is not None:
            self.health.enter_graceful_shutdown()
        if self._rest is not None:
            self._rest.stop()
        self._grpc.stop(grace).wait()
        self.core.stop()

    def wait(self) -> None:
        """Block until the gRPC server terminates."""
        self._grpc.wait_for_termination()


def parse_args(argv: Optional[List[str]] = None) -> ServerSettings:
    """The settings of a command line (serving.settings declares the flags)."""
    parser = argparse.ArgumentParser(prog="python -m serving.server", description=__doc__.split("\n\n")[0])
    add_flags(parser)
    return parse_flags(parser, argv)


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


def server_from_settings(settings: ServerSettings) -> ModelServer:
    """A ModelServer as the command line builds it.

    TensorFlow's threads set, then the models, the batching parameters and the limits the settings name
    (serving.core.ServingCore.from_settings).
    """
    from serving.core import ServingCore

    set_tensorflow_threads(settings.tensorflow_intra_op_parallelism, settings.tensorflow_inter_op_parallelism)
    return ModelServer(ServingCore.from_settings(settings), settings)


def main(argv: Optional[List[str]] = None) -> None:
    """Serve until interrupted; prints one line once the models are loaded and the ports answer."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    settings = parse_args(argv)
    try:
        server = server_from_settings(settings).start()
    except (ValueError, OSError) as err:
        raise SystemExit(f"error: {err}") from None
    names = ", ".join(repr(n) for n in server.core.models)
    notes = []
    if settings.enable_batching:
        notes.append("batching on")
    if settings.tensorflow_intra_op_parallelism or settings.tensorflow_inter_op_parallelism:
        import tensorflow as tf

        threads = tf.config.threading
        notes.append(f"TensorFlow threads: intra-op {threads.get_intra_op_parallelism_threads()}, "
                     f"inter-op {threads.get_inter_op_parallelism_threads()}")
    if server.rest_port is not None:
        notes.append(f"REST on {settings.host}:{server.rest_port}")
    if server.prometheus_path is not None:
        notes.append(f"metrics on {server.prometheus_path}")
    if server.health is not None:
        notes.append("gRPC health service on")
    noted = f" ({'; '.join(notes)})" if notes else ""
    # tests and scripts read this line to learn the ports (with --port 0)
    print(f"serving models {names}{noted} on {settings.host}:{server.port}", flush=True)
    try:
        server.wait()
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
