"""How a pydantic validation error reads in the settings' one-line messages.

Also the value type under a field's annotation. Shared by the pipeline's settings
(components/settings.py) and the dev server's (serving/settings.py), which phrase the line each
its own way around the same requirement.

Pure Python: no pydantic import (errors are read as the dicts ``ValidationError.errors()`` gives).
"""
from __future__ import annotations

import types
from typing import Annotated, Any, Literal, Mapping, Tuple, Union, get_args, get_origin

# pydantic's wording of a bound -> the settings' (the bound's value follows).
BOUNDS = (("greater than or equal to ", ">= "), ("greater than ", "> "),
          ("less than or equal to ", "<= "), ("less than ", "< "))
_SHOULD_BE = "Input should be "

Kind = Literal["check", "bound", "requirement", "other"]


def requirement(error: Mapping[str, Any]) -> Tuple[Kind, str]:
    """What one pydantic error (a dict of ``ValidationError.errors()``) says, and of which kind.

    "check": our own validator's message, as written; "bound": a number's bound (``>= 1``);
    "requirement": what the value should be (``a valid integer, unable to parse ...``);
    "other": pydantic's message as it is (``Field required``).
    """
    message = str(error["msg"])
    if error["type"] == "value_error":
        return "check", message.removeprefix("Value error, ")
    if not message.startswith(_SHOULD_BE):
        return "other", message
    message = message[len(_SHOULD_BE):]
    for words, sign in BOUNDS:
        if message.startswith(words):
            return "bound", sign + message[len(words):]
    return "requirement", message


def unwrap(annotation: Any) -> Any:
    """The value type under ``Optional[...]`` and ``Annotated[...]`` (int for ``Optional[int]``)."""
    while True:
        origin = get_origin(annotation)
        if origin is Annotated:
            annotation = get_args(annotation)[0]
        elif origin in (Union, types.UnionType):
            args = [a for a in get_args(annotation) if a is not type(None)]
            if len(args) != 1:
                return annotation
            annotation = args[0]
        else:
            return annotation
