"""TF Serving's REST API (https://www.tensorflow.org/tfx/serving/api_rest) over serving.server's core.

    GET  /v1/models/<name>[/versions/<v>|/labels/<l>]            version status
    GET  /v1/models/<name>[/versions/<v>|/labels/<l>]/metadata   SignatureDefs
    POST /v1/models/<name>[/versions/<v>|/labels/<l>]:predict    {"instances": [...]} or {"inputs": ...}
    POST /v1/models/<name>[/versions/<v>|/labels/<l>]:classify   {"examples": [{feature: value}, ...]}

Bytes travel as ``{"b64": "..."}``; string outputs whose name ends in ``_bytes`` come back that way.
Errors are ``{"error": "<message>"}`` with the HTTP status TF Serving maps the gRPC code to
(INVALID_ARGUMENT and FAILED_PRECONDITION 400, NOT_FOUND 404, RESOURCE_EXHAUSTED 429,
UNAVAILABLE 503, INTERNAL 500). The standard library's threading HTTP server is enough here:
the work is in the model, and the batcher merges concurrent requests as it does for gRPC.
"""
from __future__ import annotations

import http.server
import json
import logging
import re
import threading
from typing import Optional, Tuple

import grpc
from google.protobuf import json_format

from schema.errors import ServingError
from serving.rest_json import RestError, examples_of, invalid, request_arrays, response_body

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


# --- the server ----------------------------------------------------------------------------------
class RestServer:
    """TF Serving's REST API on a port, answering from a serving.server.ServingCore."""

    def __init__(self, core, host: str = "localhost", port: int = 8501, max_body_bytes: int = 64 << 20):
        self.core, self.max_body_bytes = core, max_body_bytes
        handler = type("Handler", (_Handler,), {"rest": self})
        self._http = http.server.ThreadingHTTPServer((host, port), handler)
        self._http.daemon_threads = True
        self.port = self._http.server_address[1]
        self._thread = threading.Thread(target=self._http.serve_forever, name="rest", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()

    # each returns (HTTP status, JSON body)
    def handle(self, method: str, path: str, body: Optional[bytes]) -> Tuple[int, dict]:
        try:
            return 200, self._route(method, path, body)
        except RestError as err:
            return HTTP_STATUS[err.code], {"error": str(err)}
        except Exception as err:  # ServingError from the core, or a bug
            code = getattr(grpc.StatusCode, err.code or "", None) if isinstance(err, ServingError) else None
            if code is None:
                log.exception("internal error")
                code = grpc.StatusCode.INTERNAL
            return HTTP_STATUS[code], {"error": str(err)}

    def _route(self, method: str, path: str, body: Optional[bytes]) -> dict:
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
        try:
            request = json.loads(body or b"")
        except ValueError as err:
            raise invalid(f"JSON Parse error: {err}") from None
        if not isinstance(request, dict):
            raise invalid("the request body must be a JSON object")
        served = self.core.version(name, version, label)
        if verb == "classify":
            signature_name = request.get("signature_name") or "serving_default"
            classes, scores = self.core.classify(served, signature_name, examples_of(request))
            return {"result": [
                [[c.decode(), float(s)] for c, s in zip(row_classes, row_scores)]
                for row_classes, row_scores in zip(classes, scores)
            ]}
        signature_name = request.get("signature_name") or "serving_default"
        signature = served.signature(signature_name)
        dtypes = {k: spec.dtype for k, spec in signature.structured_input_signature[1].items()}
        arrays, row = request_arrays(request, dtypes)
        return response_body(self.core.run(served, signature_name, arrays), row)


def _status_json(status) -> dict:
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

    def _reply(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):  # http.server's names
        self._reply(*self.rest.handle("GET", self.path, None))

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length > self.rest.max_body_bytes:
            self.close_connection = True  # the body is not read
            self._reply(HTTP_STATUS[grpc.StatusCode.RESOURCE_EXHAUSTED], {
                "error": f"the request body is {length} bytes, over this server's limit of "
                         f"{self.rest.max_body_bytes} (--max-message-bytes)"})
            return
        self._reply(*self.rest.handle("POST", self.path, self.rfile.read(length)))

    def log_message(self, format, *args):  # http.server's signature
        log.debug(format, *args)
