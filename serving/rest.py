"""TF Serving's REST API (https://www.tensorflow.org/tfx/serving/api_rest) over serving.server's core.

    GET  /v1/models/<name>[/versions/<v>|/labels/<l>]            version status
    GET  /v1/models/<name>[/versions/<v>|/labels/<l>]/metadata   SignatureDefs
    POST /v1/models/<name>[/versions/<v>|/labels/<l>]:predict    {"instances": [...]} or {"inputs": ...}
    POST /v1/models/<name>[/versions/<v>|/labels/<l>]:classify   {"examples": [{feature: value}, ...]}
    GET  /monitoring/prometheus/metrics                           the metrics (with --monitoring_config_file)

Bytes travel as ``{"b64": "..."}``; string outputs whose name ends in ``_bytes`` come back that way.
Errors are ``{"error": "<message>"}`` with the HTTP status TF Serving maps the gRPC code to
(INVALID_ARGUMENT and FAILED_PRECONDITION 400, NOT_FOUND 404, RESOURCE_EXHAUSTED 429,
UNAVAILABLE 503, INTERNAL 500). The standard library's threading HTTP server is enough here:
the work is in the model, and the batcher merges concurrent requests as it does for gRPC.

What HTTP itself gets wrong is answered as an HTTP server answers it: a body without a length
411, a malformed Content-Length 400, a body over the limit 413 (unread; the connection closed),
chunked bodies are read within the same limit, another Transfer-Encoding 501. Connections wait in
a listen backlog of REST_LISTEN_BACKLOG, at most --rest_api_num_threads are served at once, and a
connection silent for --rest_api_timeout_in_ms (while a request is awaited or read) is closed.

Every request under /v1/ is counted in the core's metrics and, when it succeeds, timed (as TF
Serving's HTTP server does: serving.monitoring); the Prometheus page is served on the path the
monitoring config enables.
"""
from __future__ import annotations

import http.server
import json
import logging
import re
import threading
import time
from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple, Type

import grpc
from google.protobuf import json_format

from schema.errors import ServingError
from serving import contract, monitoring
from serving.rest_json import (
    RestError,
    examples_of,
    invalid,
    parse_body,
    request_arrays,
    response_body,
    signature_name_of,
)

if TYPE_CHECKING:
    from serving.core import ServingCore
    from serving.settings import ServerSettings

log = logging.getLogger("serving.rest")

# tensorflow_serving/model_servers/http_rest_api_util / ToHTTPStatusCode
HTTP_STATUS = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.CANCELLED: 499,
    grpc.StatusCode.UNKNOWN: 500,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.DEADLINE_EXCEEDED: 504,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.ALREADY_EXISTS: 409,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.ABORTED: 409,
    grpc.StatusCode.OUT_OF_RANGE: 400,
    grpc.StatusCode.UNIMPLEMENTED: 501,
    grpc.StatusCode.INTERNAL: 500,
    grpc.StatusCode.UNAVAILABLE: 503,
    grpc.StatusCode.DATA_LOSS: 500,
    grpc.StatusCode.UNAUTHENTICATED: 401,
}
_PATH = re.compile(
    r"^/v1/models/(?P<name>[^/:]+)"
    r"(?:/versions/(?P<version>\d+)|/labels/(?P<label>[^/:]+))?"
    r"(?:(?P<metadata>/metadata)|:(?P<verb>predict|classify|regress))?/?$"
)
_API_PATH = re.compile(r"(?i)/v1/")  # TF Serving's REST dispatcher takes these paths (and counts them)


# --- the server ----------------------------------------------------------------------------------
class _HTTPServer(http.server.ThreadingHTTPServer):
    """The standard library's threading server with a sized backlog, serving at most `num_threads` connections at once.

    The others wait in the backlog, as they would for TF Serving.
    """

    daemon_threads = True
    request_queue_size = contract.REST_LISTEN_BACKLOG

    def __init__(self, address: Tuple[str, int], handler: Type[http.server.BaseHTTPRequestHandler],
                 num_threads: int) -> None:
        self._slots = threading.BoundedSemaphore(num_threads)
        self._closing = threading.Event()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        while not self._slots.acquire(timeout=0.5):  # every thread busy: accept no more for now
            if self._closing.is_set():
                self.shutdown_request(request)
                return
        try:
            super().process_request(request, client_address)
        except Exception:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class RestServer:
    """TF Serving's REST API on the settings' rest_api_port, answering from a ServingCore.

    It takes the same two arguments as serving.server.ModelServer: a serving.core.ServingCore and the settings. The port
    is bound here, so a taken one is refused before any model loads.
    """

    def __init__(self, core: ServingCore, settings: ServerSettings) -> None:
        if settings.rest_api_port is None:
            raise ValueError("a RestServer needs a port: set rest_api_port (--rest_api_port)")
        self.core, self.max_body_bytes = core, settings.max_message_bytes
        # None: no metrics page (no monitoring config, or one that does not enable it)
        self.prometheus_path = (monitoring.read_monitoring_config(settings.monitoring_config_file)
                                if settings.monitoring_config_file else None)
        host, port, timeout_ms = settings.host, settings.rest_api_port, settings.rest_api_timeout_in_ms
        handler = type("Handler", (_Handler,), {"rest": self, "timeout": timeout_ms / 1000})
        try:
            self._http = _HTTPServer((host, port), handler, settings.rest_api_num_threads)
        except OSError as err:
            raise OSError(f"cannot listen on {host}:{port} for REST (--rest_api_port): {err.strerror}; "
                          "is another server running there? pick another port") from None
        self.port = self._http.server_address[1]
        self._thread = threading.Thread(target=self._http.serve_forever, name="rest", daemon=True)

    def start(self) -> None:
        """Start serving HTTP in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the HTTP server and close its socket."""
        self._http._closing.set()
        if self._thread.is_alive():
            self._http.shutdown()
        self._http.server_close()

    # each returns (HTTP status, JSON body)
    def handle(self, method: str, path: str, body: Optional[bytes]) -> Tuple[int, Dict[str, Any]]:
        """Answer one REST request: (HTTP status, JSON body); requests to the API are counted in the metrics."""
        if not _API_PATH.match(path):  # not the REST API: not found, and not counted (as in TF Serving)
            hint = (" (the metrics page needs --monitoring_config_file)" if method == "GET" and
                    path.split("?", 1)[0] == monitoring.PROMETHEUS_PATH and self.prometheus_path is None else "")
            return 404, {"error": f"no such path {path[:200]!r}: the REST API is under /v1/models/<name>{hint}"}
        start, code = time.monotonic(), grpc.StatusCode.OK
        try:
            return 200, self._route(method, path, body)
        except RestError as err:
            code = err.code
            return HTTP_STATUS[code], {"error": str(err)}
        except Exception as err:  # ServingError from the core, or a bug
            code = getattr(grpc.StatusCode, err.code or "", None) if isinstance(err, ServingError) else None
            if code is None:
                log.exception("internal error")
                code = grpc.StatusCode.INTERNAL
            return HTTP_STATUS[code], {"error": str(err)}
        finally:
            self._record(method, path, code, time.monotonic() - start)

    def _record(self, method: str, path: str, code: grpc.StatusCode, seconds: float) -> None:
        """Count (and time) a request as TF Serving's HTTP server does.

        Every path under /v1/, by the model and verb of a well-formed path (a GET has no verb; a malformed path no
        model).
        """
        if not _API_PATH.match(path):
            return
        match = _PATH.match(path.split("?", 1)[0])
        if match is None or (method == "POST") != bool(match.group("verb")):
            name = verb = ""
        else:
            name, verb = match.group("name"), match.group("verb") or ""
        self.core.metrics.request(name, code.name, verb, monitoring.REST, seconds)

    def metrics_page(self, path: str) -> Optional[bytes]:
        """The Prometheus page when `path` is the monitoring config's, else None."""
        if self.prometheus_path is None or path.split("?", 1)[0] != self.prometheus_path:
            return None
        page: bytes = self.core.metrics.exposition()
        return page

    def _route(self, method: str, path: str, body: Optional[bytes]) -> Dict[str, Any]:
        match = _PATH.match(path.split("?", 1)[0])
        verb = match and match.group("verb")
        if match is None or (method == "GET") == bool(verb) or (verb == "regress"):
            raise invalid(f"Malformed request: {method} {path}")
        name, label = match.group("name"), match.group("label")
        version = int(match.group("version")) if match.group("version") else None
        if method == "GET" and match.group("metadata"):
            served = self.core.version(name, version, label)
            return {
                "model_spec": {"name": served.name, "signature_name": "", "version": str(served.version)},
                "metadata": {"signature_def": json_format.MessageToDict(
                    served.signature_def_map(), preserving_proto_field_name=True)},
            }
        if method == "GET":
            if label is not None:
                version = self.core.version(name, label=label).version
            statuses = self.core.statuses(name, version)
            return {"model_version_status": [_status_json(s) for s in statuses]}
        request = parse_body(body or b"")  # the body is checked before the model is looked up
        signature_name = signature_name_of(request)
        if verb == "classify":
            examples = examples_of(request, self.core.limits)
            classes, scores = self.core.classify(self.core.version(name, version, label), signature_name, examples)
            return {"result": [
                [[c.decode(), float(s)] for c, s in zip(row_classes, row_scores)]
                for row_classes, row_scores in zip(classes, scores)
            ]}
        served = self.core.version(name, version, label)
        signature = served.signature(signature_name)
        dtypes = {k: spec.dtype for k, spec in signature.structured_input_signature[1].items()}
        arrays, row = request_arrays(request, dtypes, self.core.limits)
        return response_body(self.core.run(served, signature_name, arrays), row)


_CHUNK_LINE_BYTES = 1024  # a chunk-size line (hex size and extensions), a trailer line
_MAX_TRAILERS = 32


class _BodyError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _status_json(status: Any) -> Dict[str, Any]:
    from tensorflow_serving.apis import get_model_status_pb2

    code = grpc.StatusCode.OK
    for candidate in grpc.StatusCode:
        if candidate.value[0] == status.status.error_code:
            code = candidate
    return {
        "version": str(status.version),
        "state": get_model_status_pb2.ModelVersionStatus.State.Name(status.state),
        "status": {"error_code": code.name, "error_message": status.status.error_message},
    }


class _Handler(http.server.BaseHTTPRequestHandler):
    rest: RestServer
    protocol_version = "HTTP/1.1"  # keep-alive: one connection for a client's many requests

    def _reply(self, status: int, body: Dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # http.server's names
        page = self.rest.metrics_page(self.path)
        if page is not None:
            self.send_response(200)
            self.send_header("Content-Type", monitoring.CONTENT_TYPE)
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)
            return
        self._reply(*self.rest.handle("GET", self.path, None))

    def do_POST(self) -> None:
        try:
            body = self._body()
        except _BodyError as err:
            self.close_connection = True  # what is left of the body is not read
            self._reply(err.status, {"error": str(err)})
            return
        self._reply(*self.rest.handle("POST", self.path, body))

    def _body(self) -> bytes:
        """The request body: Content-Length bytes, or a chunked body, within the body limit."""
        limit = self.rest.max_body_bytes
        over = f"over this server's limit of {limit} bytes (--max_message_bytes)"
        encoding = self.headers.get("Transfer-Encoding")
        length = self.headers.get("Content-Length")
        if encoding is not None:
            if encoding.strip().lower() != "chunked":
                raise _BodyError(501, f"Transfer-Encoding {encoding!r} is not supported (chunked is)")
            if length is not None:
                raise _BodyError(400, "a request has Content-Length or Transfer-Encoding, not both")
            return self._chunked_body(limit, over)
        if length is None:
            raise _BodyError(411, "a POST needs a Content-Length header (or Transfer-Encoding: chunked)")
        if not length.strip().isdigit() or not length.isascii():
            raise _BodyError(400, f"Content-Length must be a number of bytes, got {length!r}")
        if int(length) > limit:
            raise _BodyError(413, f"the request body is {int(length)} bytes, {over}")
        return self.rfile.read(int(length))

    def _chunked_body(self, limit: int, over: str) -> bytes:
        chunks, size = [], 0
        while True:
            line = self.rfile.readline(_CHUNK_LINE_BYTES + 1)
            token = line.split(b";", 1)[0].strip()
            try:
                if len(line) > _CHUNK_LINE_BYTES or not token.isalnum():
                    raise ValueError
                chunk = int(token, 16)
            except ValueError:
                raise _BodyError(400, f"malformed chunk size line {line[:40]!r} in a chunked body") from None
            if chunk == 0:
                break
            size += chunk
            if size > limit:
                raise _BodyError(413, f"the chunked request body is {over}")
            data = self.rfile.read(chunk)
            if len(data) < chunk or self.rfile.readline(3) not in (b"\r\n", b"\n"):
                raise _BodyError(400, "a chunk of the chunked body is shorter than its size says")
            chunks.append(data)
        for _ in range(_MAX_TRAILERS):  # trailers, ignored, up to the blank line
            if self.rfile.readline(_CHUNK_LINE_BYTES + 1) in (b"\r\n", b"\n", b""):
                return b"".join(chunks)
        raise _BodyError(400, "too many trailer lines after the chunked body")

    def log_message(self, format: str, *args: Any) -> None:  # http.server's signature
        log.debug(format, *args)
