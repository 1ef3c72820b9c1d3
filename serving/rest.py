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

import base64
import http.server
import json
import logging
import re
import threading
from typing import Dict, List, Optional, Tuple

import grpc
import numpy as np
from google.protobuf import json_format
from tensorflow.core.example import example_pb2, feature_pb2

from schema.errors import ServingError

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


class RestError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code


def _invalid(message: str) -> RestError:
    return RestError(grpc.StatusCode.INVALID_ARGUMENT, message)


# --- JSON <-> arrays -----------------------------------------------------------------------------
def _to_bytes(value, where: str):
    if isinstance(value, list):
        return [_to_bytes(v, where) for v in value]
    if isinstance(value, dict):
        if set(value) != {"b64"} or not isinstance(value["b64"], str):
            raise _invalid(f"{where}: a bytes value must be a string or {{\"b64\": \"<base64>\"}}, got {value}")
        try:
            return base64.b64decode(value["b64"], validate=True)
        except ValueError as err:
            raise _invalid(f"{where}: the b64 value is not valid base64 ({err})") from None
    if isinstance(value, str):
        return value.encode()
    raise _invalid(f"{where}: expected a string or {{\"b64\": ...}}, got {type(value).__name__}")


def to_array(value, dtype, where: str) -> np.ndarray:
    """A JSON value as an array of the signature input's dtype (a tf.DType)."""
    if dtype.name == "string":
        converted = _to_bytes(value, where)
        array = np.empty(len(converted), dtype=object) if isinstance(converted, list) else None
        if array is not None and all(isinstance(v, bytes) for v in converted):
            array[:] = converted
            return array
        return np.array(converted, dtype=object)
    try:
        return np.asarray(value, dtype=dtype.as_numpy_dtype)
    except (TypeError, ValueError, OverflowError) as err:
        raise _invalid(f"{where}: cannot be read as {dtype.name} ({err})") from None


def request_arrays(body: dict, dtypes: Dict[str, object]) -> Tuple[Dict[str, np.ndarray], bool]:
    """({input: array}, row format?) of a :predict body, in TF Serving's row or columnar format."""
    if ("instances" in body) == ("inputs" in body):
        raise _invalid('Missing \'instances\' or \'inputs\' key (exactly one of them, TF Serving\'s row '
                       'or columnar format)')
    single = next(iter(dtypes)) if len(dtypes) == 1 else None
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list):
            raise _invalid("'instances' must be a list")
        if instances and all(isinstance(i, dict) and "b64" not in i for i in instances):
            names = set().union(*(i.keys() for i in instances))
            if any(set(i) != names for i in instances):
                raise _invalid("every instance must name the same inputs")
            columns = {name: [i[name] for i in instances] for name in names}
        elif single is not None:
            columns = {single: instances}
        else:
            raise _invalid(f"this signature has inputs {sorted(dtypes)}: each instance must be an object naming them")
        row = True
    else:
        inputs = body["inputs"]
        if isinstance(inputs, dict) and "b64" not in inputs:
            columns = inputs
        elif single is not None:
            columns = {single: inputs}
        else:
            raise _invalid(f"this signature has inputs {sorted(dtypes)}: 'inputs' must be an object naming them")
        row = False
    arrays = {}
    for name, value in columns.items():
        if name not in dtypes:
            raise _invalid(f"input {name!r} is unknown; the signature's inputs are {sorted(dtypes)}")
        arrays[name] = to_array(value, dtypes[name], f"input {name!r}")
    return arrays, row


def _json_value(array: np.ndarray, name: str):
    if array.dtype == object or array.dtype.kind == "S":
        def convert(v):
            if isinstance(v, (list, np.ndarray)):
                return [convert(x) for x in v]
            if name.endswith("_bytes"):
                return {"b64": base64.b64encode(v).decode()}
            try:
                return v.decode()
            except UnicodeDecodeError:
                return {"b64": base64.b64encode(v).decode()}
        return convert(list(array))
    return array.tolist()


def response_body(outputs: Dict[str, np.ndarray], row: bool) -> dict:
    """TF Serving's predict response: {"predictions": rows} or {"outputs": columns}."""
    values = {name: _json_value(array, name) for name, array in outputs.items()}
    if not row:
        return {"outputs": next(iter(values.values())) if len(values) == 1 else values}
    count = len(next(iter(values.values()))) if values else 0
    if len(values) == 1:
        return {"predictions": next(iter(values.values()))}
    return {"predictions": [{name: value[i] for name, value in values.items()} for i in range(count)]}


def _feature(value, where: str) -> feature_pb2.Feature:
    values = value if isinstance(value, list) else [value]
    feature = feature_pb2.Feature()
    if all(isinstance(v, bool) for v in values) and values:
        raise _invalid(f"{where}: booleans are not a tf.Example type")
    if all(isinstance(v, int) for v in values):
        feature.int64_list.value.extend(values)
    elif all(isinstance(v, (int, float)) for v in values):
        feature.float_list.value.extend(values)
    else:
        feature.bytes_list.value.extend(_to_bytes(values, where))
    return feature


def examples_of(body: dict) -> List[bytes]:
    """Serialized tf.Examples of a :classify body (`examples`, with optional `context` features)."""
    examples = body.get("examples")
    if not isinstance(examples, list):
        raise _invalid("'examples' must be a list of objects, one feature name -> value map per example")
    context = body.get("context", {})
    if not isinstance(context, dict):
        raise _invalid("'context' must be an object of features")
    serialized = []
    for i, example in enumerate(examples):
        if not isinstance(example, dict):
            raise _invalid(f"example {i} must be an object of features")
        proto = example_pb2.Example()
        for name, value in {**context, **example}.items():
            proto.features.feature[name].CopyFrom(_feature(value, f"example {i} feature {name!r}"))
        serialized.append(proto.SerializeToString())
    return serialized


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
            raise _invalid(f"Malformed request: {method} {path}")
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
            raise _invalid(f"JSON Parse error: {err}") from None
        if not isinstance(request, dict):
            raise _invalid("the request body must be a JSON object")
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
