"""gRPC status codes of serving errors.

A ServingError carries the code's name (so the clients need no grpc), the dev server turns it back into a
grpc.StatusCode; TensorFlow's error codes are gRPC's.
"""
from __future__ import annotations

import grpc

from schema.errors import ServingError

TF_ERROR_CODES = {code.value[0]: code for code in grpc.StatusCode}  # TF error codes are gRPC's


def status_error(code: grpc.StatusCode, message: str) -> ServingError:
    """The error a request gets back: its message, with gRPC status `code` (REST: the matching HTTP status)."""
    return ServingError(message, code.name)


def grpc_status(err: ServingError) -> grpc.StatusCode:
    """The gRPC status of a ServingError (INTERNAL when it has none)."""
    return getattr(grpc.StatusCode, err.code or "", grpc.StatusCode.INTERNAL)
