"""The JSON of TF Serving's REST API.

Request bodies (row ``instances`` or columnar ``inputs``, ``{"b64": ...}`` bytes, ``:classify`` examples) to arrays
and tf.Examples, outputs back to JSON.
"""
from __future__ import annotations

import base64
import json
from typing import Any, Dict, List, Tuple

import grpc
import numpy as np
from tensorflow.core.example import example_pb2, feature_pb2

from serving import contract
from serving.limits import RequestLimits


class RestError(Exception):
    """A request the REST API refuses, with the gRPC code its HTTP status comes from."""

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


def invalid(message: str) -> RestError:
    """An INVALID_ARGUMENT RestError (HTTP 400)."""
    return RestError(grpc.StatusCode.INVALID_ARGUMENT, message)


# --- the body ------------------------------------------------------------------------------------
def parse_body(body: bytes) -> Dict[str, Any]:
    """A request body as a JSON object, nested at most MAX_JSON_DEPTH deep."""
    try:
        request = json.loads(body or b"")
    except RecursionError:
        request = None  # nested deeper than the parser's recursion: refused below like any too deep
    except ValueError as err:
        raise invalid(f"JSON Parse error: {err}") from None
    if request is None or json_depth(request) > contract.MAX_JSON_DEPTH:
        raise invalid(f"JSON Parse error: the body is nested more than {contract.MAX_JSON_DEPTH} deep "
                      "(TF Serving's inputs need at most 6)")
    if not isinstance(request, dict):
        raise invalid("the request body must be a JSON object")
    return request


def json_depth(value: Any) -> int:
    """How deep lists and objects nest in a parsed JSON value (iterative: no recursion limit)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, (list, dict)):
            deepest = max(deepest, depth)
            if deepest > contract.MAX_JSON_DEPTH:
                return deepest
            stack.extend((v, depth + 1) for v in (value.values() if isinstance(value, dict) else value)
                         if isinstance(v, (list, dict)))  # scalars: no tuple each (15M "a" = 1 GB)
    return deepest


def signature_name_of(body: Dict[str, Any]) -> str:
    """The body's signature_name (serving_default when none), checked to be a string."""
    name = body.get("signature_name") or "serving_default"
    if not isinstance(name, str):
        raise invalid(f"'signature_name' must be a string, got {type(name).__name__}")
    return name


def _rows(value: Any) -> int:
    return len(value) if isinstance(value, list) else 1


# --- JSON <-> arrays -----------------------------------------------------------------------------
def _to_bytes(value: Any, where: str) -> Any:
    if isinstance(value, list):
        return [_to_bytes(v, where) for v in value]
    if isinstance(value, dict):
        if set(value) != {"b64"} or not isinstance(value["b64"], str):
            raise invalid(f"{where}: a bytes value must be a string or {{\"b64\": \"<base64>\"}}, got {value}")
        try:
            return base64.b64decode(value["b64"], validate=True)
        except ValueError as err:
            raise invalid(f"{where}: the b64 value is not valid base64 ({err})") from None
    if isinstance(value, str):
        return value.encode()
    raise invalid(f"{where}: expected a string or {{\"b64\": ...}}, got {type(value).__name__}")


def to_array(value: Any, dtype: Any, where: str) -> np.ndarray:
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
        raise invalid(f"{where}: cannot be read as {dtype.name} ({err})") from None


def request_arrays(body: Dict[str, Any], dtypes: Dict[str, Any], limits: RequestLimits
                   ) -> Tuple[Dict[str, np.ndarray], bool]:
    """({input: array}, row format?) of a :predict body, in TF Serving's row or columnar format.

    The rows are counted before anything is converted.
    """
    if ("instances" in body) == ("inputs" in body):
        raise invalid('Missing \'instances\' or \'inputs\' key (exactly one of them, TF Serving\'s row '
                       'or columnar format)')
    single = next(iter(dtypes)) if len(dtypes) == 1 else None
    if "instances" in body:
        instances = body["instances"]
        if not isinstance(instances, list):
            raise invalid("'instances' must be a list")
        if instances and all(isinstance(i, dict) and "b64" not in i for i in instances):
            names = set().union(*(i.keys() for i in instances))
            if any(set(i) != names for i in instances):
                raise invalid("every instance must name the same inputs")
            columns = {name: [i[name] for i in instances] for name in names}
        elif single is not None:
            columns = {single: instances}
        else:
            raise invalid(f"this signature has inputs {sorted(dtypes)}: each instance must be an object naming them")
        row = True
    else:
        inputs = body["inputs"]
        if isinstance(inputs, dict) and "b64" not in inputs:
            columns = inputs
        elif single is not None:
            columns = {single: inputs}
        else:
            raise invalid(f"this signature has inputs {sorted(dtypes)}: 'inputs' must be an object naming them")
        row = False
    limits.check(max((_rows(v) for v in columns.values()), default=0), 0)
    arrays, decoded = {}, 0
    for name, value in columns.items():
        if name not in dtypes:
            raise invalid(f"input {name!r} is unknown; the signature's inputs are {sorted(dtypes)}")
        arrays[name] = to_array(value, dtypes[name], f"input {name!r}")
        decoded += arrays[name].nbytes if arrays[name].dtype != object else sum(map(len, arrays[name].reshape(-1)))
        limits.check(0, decoded)
    return arrays, row


def _json_value(array: np.ndarray, name: str) -> Any:
    if array.dtype == object or array.dtype.kind == "S":
        def convert(v: Any) -> Any:
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


def response_body(outputs: Dict[str, np.ndarray], row: bool) -> Dict[str, Any]:
    """TF Serving's predict response: {"predictions": rows} or {"outputs": columns}."""
    values = {name: _json_value(array, name) for name, array in outputs.items()}
    if not row:
        return {"outputs": next(iter(values.values())) if len(values) == 1 else values}
    count = len(next(iter(values.values()))) if values else 0
    if len(values) == 1:
        return {"predictions": next(iter(values.values()))}
    return {"predictions": [{name: value[i] for name, value in values.items()} for i in range(count)]}


def _feature(value: Any, where: str) -> feature_pb2.Feature:
    values = value if isinstance(value, list) else [value]
    feature = feature_pb2.Feature()
    if all(isinstance(v, bool) for v in values) and values:
        raise invalid(f"{where}: booleans are not a tf.Example type")
    if all(isinstance(v, int) for v in values):
        if any(not -2**63 <= v < 2**63 for v in values):
            raise invalid(f"{where}: an integer is outside int64, the only integer type of a tf.Example")
        feature.int64_list.value.extend(values)
    elif all(isinstance(v, (int, float)) for v in values):
        feature.float_list.value.extend(values)
    else:
        feature.bytes_list.value.extend(_to_bytes(values, where))
    return feature


def examples_of(body: Dict[str, Any], limits: RequestLimits) -> List[bytes]:
    """Serialized tf.Examples of a :classify body (`examples`, with optional `context` features).

    The examples counted before any is built.
    """
    examples = body.get("examples")
    if not isinstance(examples, list):
        raise invalid("'examples' must be a list of objects, one feature name -> value map per example")
    limits.check(len(examples), 0)
    context = body.get("context", {})
    if not isinstance(context, dict):
        raise invalid("'context' must be an object of features")
    serialized, size = [], 0
    for i, example in enumerate(examples):
        if not isinstance(example, dict):
            raise invalid(f"example {i} must be an object of features")
        proto = example_pb2.Example()
        for name, value in {**context, **example}.items():
            proto.features.feature[name].CopyFrom(_feature(value, f"example {i} feature {name!r}"))
        serialized.append(proto.SerializeToString())
        size += len(serialized[-1])
        limits.check(0, size)
    return serialized
