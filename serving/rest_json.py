"""The JSON of TF Serving's REST API: request bodies (row ``instances`` or columnar ``inputs``,
``{"b64": ...}`` bytes, ``:classify`` examples) to arrays and tf.Examples, outputs back to JSON."""
from __future__ import annotations

import base64
from typing import Dict, List, Tuple

import grpc
import numpy as np
from tensorflow.core.example import example_pb2, feature_pb2


class RestError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code


def invalid(message: str) -> RestError:
    return RestError(grpc.StatusCode.INVALID_ARGUMENT, message)


# --- JSON <-> arrays -----------------------------------------------------------------------------
def _to_bytes(value, where: str):
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
        raise invalid(f"{where}: cannot be read as {dtype.name} ({err})") from None


def request_arrays(body: dict, dtypes: Dict[str, object]) -> Tuple[Dict[str, np.ndarray], bool]:
    """({input: array}, row format?) of a :predict body, in TF Serving's row or columnar format."""
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
    arrays = {}
    for name, value in columns.items():
        if name not in dtypes:
            raise invalid(f"input {name!r} is unknown; the signature's inputs are {sorted(dtypes)}")
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
        raise invalid(f"{where}: booleans are not a tf.Example type")
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
        raise invalid("'examples' must be a list of objects, one feature name -> value map per example")
    context = body.get("context", {})
    if not isinstance(context, dict):
        raise invalid("'context' must be an object of features")
    serialized = []
    for i, example in enumerate(examples):
        if not isinstance(example, dict):
            raise invalid(f"example {i} must be an object of features")
        proto = example_pb2.Example()
        for name, value in {**context, **example}.items():
            proto.features.feature[name].CopyFrom(_feature(value, f"example {i} feature {name!r}"))
        serialized.append(proto.SerializeToString())
    return serialized
