"""Validated settings: the value types configurations use, and the one-line error for a bad one.

The pipeline config (pipeline/config.py) and the hyperparameters (components/hparams.py) are
pydantic dataclasses built from these types, so a YAML file, a flag and a Python caller are all
checked the same way. What is unambiguous is coerced (``"10"`` -> 10, ``"0.9"`` -> 0.9, ``10.0`` ->
10); anything else is refused with one line naming the key, the value and what was expected:

    config key 'hparams.epochs': got 'ten', expected a valid integer, unable to parse string as an integer

Numbers refuse booleans (``epochs: true`` is a typo, not 1), and NaN/infinity (a threshold of NaN
would silently switch a check off: nothing is greater than NaN).
"""
from __future__ import annotations

import difflib
import reprlib
from typing import Annotated, Any, Iterable, Mapping, Optional, Sequence

from pydantic import BeforeValidator, ConfigDict, Field, ValidationError

from schema.errors import ConfigError

# Every settings dataclass: unknown keys are errors, floats must be finite.
CONFIG = ConfigDict(extra="forbid", allow_inf_nan=False)
# Limits on what a configuration file can make us do: its size (a config is a few KB; PyYAML
# parses ~1 MB/s), the unknown keys an error names, and how much of a bad value it quotes.
MAX_CONFIG_BYTES = 1 << 20
MAX_KEYS_SHOWN = 3
MAX_VALUE_CHARS = 80
_SHORT = reprlib.Repr()  # bounded work on any value: 3 levels of at most 6 items each
_SHORT.maxlevel, _SHORT.maxstring, _SHORT.maxother = 3, MAX_VALUE_CHARS, MAX_VALUE_CHARS


def short_repr(value: Any) -> str:
    """repr() of at most MAX_VALUE_CHARS (long strings, large or deeply nested values included)."""
    text = _SHORT.repr(value)
    return text if len(text) <= MAX_VALUE_CHARS else text[:MAX_VALUE_CHARS - 3] + "..."


def _no_bool(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected a number, not true/false")
    return value


Int = Annotated[int, BeforeValidator(_no_bool)]
Float = Annotated[float, BeforeValidator(_no_bool)]
PositiveInt = Annotated[Int, Field(ge=1)]
NonNegativeInt = Annotated[Int, Field(ge=0)]
PositiveFloat = Annotated[Float, Field(gt=0)]
NonNegativeFloat = Annotated[Float, Field(ge=0)]
Fraction = Annotated[Float, Field(ge=0, le=1)]  # rates and thresholds in [0, 1]
OpenFraction = Annotated[Float, Field(ge=0, lt=1)]  # [0, 1): smoothing, dropout, jitter


def closest(key: str, known: Iterable[str]) -> Optional[str]:
    """The known key a typo most likely meant, or None."""
    match = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return match[0] if match else None


def check_keys(values: Mapping[str, Any], known: Sequence[str], prefix: str = "") -> None:
    """Unknown keys -> ConfigError naming the first one and the closest known key."""
    unknown = sorted(str(k) for k in values if k not in known)
    if not unknown:
        return
    key = unknown[0]
    guess = closest(key[:MAX_VALUE_CHARS], known)
    hint = f"; did you mean {prefix + guess!r}?" if guess else f"; known keys: {', '.join(sorted(known))}"
    others = [short_repr(k) for k in unknown[1:1 + MAX_KEYS_SHOWN]]
    others += ["..."] if len(unknown) > 1 + MAX_KEYS_SHOWN else []
    more = f" (and {len(unknown) - 1} more: {', '.join(others)})" if len(unknown) > 1 else ""
    raise ConfigError(f"unknown configuration key {short_repr(prefix + key)}{more}{hint}")


# pydantic's wording -> ours (the message follows "expected ").
_BOUNDS = (("greater than or equal to ", ">= "), ("greater than ", "> "),
           ("less than or equal to ", "<= "), ("less than ", "< "))


def _expected(err: Mapping[str, Any]) -> str:
    msg = str(err["msg"])
    if err["type"] == "value_error":  # raised by our own checks: already says what is expected
        return msg.removeprefix("Value error, ")
    if msg.startswith("Input should be "):
        msg = msg[len("Input should be "):]
        for words, sign in _BOUNDS:
            if msg.startswith(words):
                msg = "a number " + sign + msg[len(words):]
        return "expected " + msg
    return msg


def config_error(err: ValidationError, prefix: str = "") -> ConfigError:
    """One line for the first problem of a pydantic ValidationError (the rest are counted)."""
    first = err.errors()[0]
    loc = ".".join(str(part) for part in first["loc"])
    if first["type"] == "unexpected_keyword_argument":
        return ConfigError(f"unknown configuration key {prefix + loc!r}")
    if loc:  # one value
        head = f"config key {short_repr(prefix + loc)}: got {short_repr(first['input'])}, "
    else:  # a check across values (__post_init__): its message names them
        head = f"config {prefix.rstrip('.')!r}: " if prefix else "config: "
    more = f" (and {err.error_count() - 1} more problems)" if err.error_count() > 1 else ""
    return ConfigError(f"{head}{_expected(first)}{more}")


def build(cls: Any, values: Mapping[str, Any], prefix: str = "") -> Any:
    """`cls(**values)` with unknown keys and bad values as one-line ConfigErrors."""
    if not isinstance(values, Mapping):
        raise ConfigError(f"config {prefix.rstrip('.') or 'file'!r}: expected a mapping of keys, "
                          f"got {type(values).__name__} {short_repr(values)}")
    check_keys(values, [f for f in cls.__dataclass_fields__], prefix)
    try:
        return cls(**values)
    except ValidationError as err:
        raise config_error(err, prefix) from None
