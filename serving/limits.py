"""What one request may cost the dev server: rows and decoded bytes.

Checked before the request's tensors are built (gRPC: from the TensorProtos' shapes; REST: from the JSON), batching
on or off. The defaults are declared with the server's other limits in serving.contract.
"""
from __future__ import annotations

import math
from typing import Annotated, Any, Iterable, Mapping, Tuple

import grpc
import pydantic
import pydantic.dataclasses

from serving import contract
from serving.status import status_error


@pydantic.dataclasses.dataclass(frozen=True)
class RequestLimits:
    """Bounds on one request: --max_request_rows and --max_request_decoded_bytes."""

    max_rows: Annotated[int, pydantic.Field(ge=1)] = contract.MAX_REQUEST_ROWS
    max_decoded_bytes: Annotated[int, pydantic.Field(ge=1)] = contract.MAX_REQUEST_DECODED_BYTES

    def check(self, rows: int, decoded_bytes: int) -> None:
        """INVALID_ARGUMENT naming the limit and its flag when a request is over one."""
        if rows > self.max_rows:
            raise status_error(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"the request holds {rows} rows; this server takes at most {self.max_rows} per request "
                f"(--max_request_rows): send smaller batches",
            )
        if decoded_bytes > self.max_decoded_bytes:
            raise status_error(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"the request's inputs are {decoded_bytes} bytes once decoded; this server takes at most "
                f"{self.max_decoded_bytes} per request (--max_request_decoded_bytes): send smaller batches",
            )


def proto_size(proto: Any, itemsize: int) -> Tuple[int, int]:
    """(rows, decoded bytes) of a TensorProto, from its shape and values, before it is decoded.

    The shape counts, not how many values were sent: tf.make_ndarray repeats a single value over the whole shape.
    """
    dims = [d.size for d in proto.tensor_shape.dim]
    if any(d < 0 for d in dims):
        raise status_error(grpc.StatusCode.INVALID_ARGUMENT, f"a tensor shape has a negative size: {dims}")
    rows = dims[0] if dims else 1
    if proto.string_val:
        return rows, sum(len(v) for v in proto.string_val)
    return rows, math.prod(dims) * itemsize


def total(sizes: Iterable[Tuple[int, int]]) -> Tuple[int, int]:
    """(rows, bytes) of a request made of inputs of these sizes: the most rows, the sum of bytes."""
    sizes = list(sizes)
    return max((r for r, _ in sizes), default=0), sum(b for _, b in sizes)


def array_size(array: Any) -> int:
    """Bytes of an array's values (an object array's bytes strings by their lengths)."""
    if array.dtype == object:
        return sum(len(v) if isinstance(v, (bytes, str)) else 8 for v in array.reshape(-1))
    return int(array.nbytes)


def arrays_size(arrays: Mapping[str, Any]) -> Tuple[int, int]:
    """(rows, bytes) of a request's arrays (see total)."""
    return total(((a.shape[0] if a.ndim else 1), array_size(a)) for a in arrays.values())
