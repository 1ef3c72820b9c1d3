"""The dev server's settings, declared once: TF Serving's flag names, types, defaults and help.

ServerSettings is a pydantic model; serving.server's command line is derived from its fields
(add_flags: ``--model_base_path`` and the project's ``--model-base-path`` alike, the help and
default from the field), and Python callers build the same model, so both are checked the same
way. ``one_line`` turns a pydantic ValidationError into the one line the command lines print:

    --max_request_rows must be >= 1, got 0

No TensorFlow or gRPC here: ``--help`` and a bad flag answer before anything heavy loads.
"""
from __future__ import annotations

import argparse
from typing import List, Optional

import pydantic
from pydantic import ConfigDict, Field

from schema.validation import requirement, unwrap
from serving import contract


def one_line(err: pydantic.ValidationError, flags: bool = False) -> str:
    """The first problem of `err` in one line, naming the setting (as ``--name`` when `flags`)."""
    first = err.errors()[0]
    kind, message = requirement(first)  # a check of ours names the settings in its message
    if kind in ("bound", "requirement"):
        message = f"must be {message}"
    if not first["loc"]:
        return message
    name = ".".join(str(part) for part in first["loc"])
    return f"{'--' if flags else ''}{name} {message}, got {first['input']!r}"


class ServerSettings(pydantic.BaseModel):
    """What serving.server serves and how.

    One field per flag of TF Serving's model server (and a few of the dev server's own), with TF Serving's names and
    defaults.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model_base_path: Optional[str] = Field(None, description="directory holding <version>/ SavedModels")
    model_name: str = Field(contract.MODEL_NAME, description="the name the model is served under")
    model_config_file: Optional[str] = Field(
        None, description="a ModelServerConfig text file (serving/models.config): several models, version "
                          "policies, labels")
    port: int = Field(8500, ge=0, le=65535, description="gRPC port (0: any free port)")
    rest_api_port: Optional[int] = Field(
        None, ge=0, le=65535,
        description="serve TF Serving's REST API on this port too (0: any free port; default: no REST)")
    host: str = Field("localhost", description="address to bind; 0.0.0.0 exposes it to the network")
    enable_batching: bool = Field(
        False, description="merge concurrent requests into batches (TF Serving's server-side batching)")
    batching_parameters_file: Optional[str] = Field(
        None, description="BatchingParameters text file (serving/batching_parameters.txt)")
    monitoring_config_file: Optional[str] = Field(
        None, description="a MonitoringConfig text file (serving/monitoring_config.txt, TF Serving's format): "
                          "prometheus_config { enable: true } serves TF Serving's metrics on the REST port")
    enable_grpc_healthcheck_service: bool = Field(
        False, description="serve gRPC's health service (grpc.health.v1.Health) on the gRPC port")
    poll_seconds: float = Field(1.0, gt=0, description="how often to look for new versions")
    max_workers: int = Field(64, ge=1, description="concurrent gRPC requests")
    max_message_bytes: int = Field(contract.MAX_MESSAGE_BYTES, ge=1, description="largest gRPC message and REST body")
    max_request_rows: int = Field(
        contract.MAX_REQUEST_ROWS, ge=1, description="rows (images, examples) one request may hold, batching on or off")
    max_request_decoded_bytes: int = Field(
        contract.MAX_REQUEST_DECODED_BYTES, ge=1,
        description="bytes of one request's input tensors once decoded from JSON, base64 or protobuf")
    rest_api_num_threads: int = Field(
        contract.REST_API_NUM_THREADS, ge=1,
        description="REST connections served at once (more wait in the listen backlog)")
    rest_api_timeout_in_ms: int = Field(
        contract.REST_API_TIMEOUT_MS, ge=1,
        description="a REST connection silent this long (idle, or sending a request too slowly) is closed")
    tensorflow_intra_op_parallelism: int = Field(
        0, ge=0, description="threads one op may use (0: TensorFlow's choice, all cores); 1 with "
                             "num_batch_threads = cores serves concurrent clients fastest on CPU")
    tensorflow_inter_op_parallelism: int = Field(0, ge=0, description="ops run at once (0: TensorFlow's choice)")

    @pydantic.model_validator(mode="after")
    def _consistent(self) -> ServerSettings:
        if self.model_config_file is None and self.model_base_path is None:
            raise ValueError("give --model-base-path (one model) or --model_config_file")
        if self.batching_parameters_file and not self.enable_batching:
            raise ValueError("--batching_parameters_file needs --enable_batching (as in TF Serving)")
        if self.monitoring_config_file and self.rest_api_port is None:
            raise ValueError("--monitoring_config_file serves the metrics on the REST port: give --rest_api_port too")
        return self


def _bool(value: str) -> bool:
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def add_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per ServerSettings field.

    Under TF Serving's spelling (--model_base_path) and the project's (--model-base-path). Flags not given are left
    out, so the model's defaults apply.
    """
    for name, field in ServerSettings.model_fields.items():
        spellings = [f"--{name}"] + ([f"--{name.replace('_', '-')}"] if "_" in name else [])
        kind = unwrap(field.annotation)  # the type a flag's text is converted to
        shown = "none" if field.default is None else field.default
        help_text = f"{field.description} (default: {shown})"
        if kind is bool:
            parser.add_argument(*spellings, dest=name, type=_bool, nargs="?", const=True,
                                default=argparse.SUPPRESS, help=help_text)
        else:
            parser.add_argument(*spellings, dest=name, type=kind, default=argparse.SUPPRESS, help=help_text)


def parse_flags(parser: argparse.ArgumentParser, argv: Optional[List[str]] = None) -> ServerSettings:
    """The settings of a command line made by add_flags; a bad one is the parser's one-line error."""
    given = vars(parser.parse_args(argv))
    try:
        return ServerSettings(**given)
    except pydantic.ValidationError as err:
        parser.error(one_line(err, flags=True))
