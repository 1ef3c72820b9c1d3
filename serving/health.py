"""gRPC's standard health service (grpc.health.v1.Health) for the dev server.

Behind TF Serving's --enable_grpc_healthcheck_service flag, answering what TF Serving answers:

- "" (the whole server), "ModelService" and "PredictionService" (TF Serving registers these two
  short names, not tensorflow.serving.*): SERVING while the server runs, NOT_SERVING once it is
  stopping;
- and, as the dev server's addition, a served model's name: SERVING while one of its versions is
  AVAILABLE, NOT_SERVING while none is (nothing pushed yet, every version failed to load). On
  TF Serving that question is asked of the REST status URL (/v1/models/<name>), as the
  production manifests' probes do.

Any other name is answered NOT_FOUND (Check) or SERVICE_UNKNOWN (Watch), as the health protocol
says. Kubernetes' gRPC probes (``grpc: {port: 8500}``), grpc_health_probe and load balancers
call Check with "" unless told a service.

The messages come from serving.protos (grpcio-health-checking, which carries them and a servicer,
is not in the local package indexes); the two methods are registered as a generic handler.
"""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Iterator, Optional

import grpc
from tensorflow_serving.apis import get_model_status_pb2

from serving import protos

if TYPE_CHECKING:
    from serving.core import ServingCore
    from serving.models import ServedModel

Status = protos.HealthCheckResponse.ServingStatus
SERVING: int = Status.Value("SERVING")
NOT_SERVING: int = Status.Value("NOT_SERVING")
SERVICE_UNKNOWN: int = Status.Value("SERVICE_UNKNOWN")
SERVER_SERVICES = ("", "ModelService", "PredictionService")  # what TF Serving sets SERVING
_AVAILABLE = get_model_status_pb2.ModelVersionStatus.AVAILABLE


class HealthService:
    """Check and Watch over a ServingCore's models."""

    def __init__(self, core: ServingCore, watch_poll_seconds: float = 0.5) -> None:
        self.core = core
        self.watch_poll_seconds = watch_poll_seconds
        self._stopping = threading.Event()

    def status(self, service: str) -> Optional[int]:
        """The ServingStatus of `service`, or None when it is not one this server knows."""
        if self._stopping.is_set():
            return NOT_SERVING if service in SERVER_SERVICES or service in self.core.models else None
        if service in SERVER_SERVICES:
            return SERVING
        if service in self.core.models:
            return SERVING if self._available(self.core.models[service]) else NOT_SERVING
        return None

    @staticmethod
    def _available(model: ServedModel) -> bool:
        return any(s.state == _AVAILABLE for s in model.statuses())

    def check(self, request: Any, context: grpc.ServicerContext) -> Any:
        """Health.Check: the service's status now (NOT_FOUND for a service this server does not know)."""
        status = self.status(request.service)
        if status is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}: this server answers "
                          f"{', '.join(repr(s) for s in (*SERVER_SERVICES, *sorted(self.core.models)))}")
        return protos.HealthCheckResponse(status=status)

    def watch(self, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        """The status now, then each change, until the client leaves or the server stops."""
        last = None
        while context.is_active():
            status = self.status(request.service)
            status = SERVICE_UNKNOWN if status is None else status
            if status != last:
                yield protos.HealthCheckResponse(status=status)
                last = status
            if self._stopping.is_set():
                return
            self._stopping.wait(self.watch_poll_seconds)

    def enter_graceful_shutdown(self) -> None:
        """Every service NOT_SERVING from now on (the server is stopping)."""
        self._stopping.set()

    def handler(self) -> grpc.GenericRpcHandler:
        """The gRPC handler of the Health service's Check and Watch methods."""
        request, response = protos.HealthCheckRequest.FromString, protos.HealthCheckResponse.SerializeToString
        return grpc.method_handlers_generic_handler(protos.HEALTH_SERVICE, {
            "Check": grpc.unary_unary_rpc_method_handler(
                self.check, request_deserializer=request, response_serializer=response),
            "Watch": grpc.unary_stream_rpc_method_handler(
                self.watch, request_deserializer=request, response_serializer=response),
        })
