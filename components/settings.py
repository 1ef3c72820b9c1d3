"""Validated settings.

The value types configurations use, the one-line error for a bad one, and the command lines derived from the
settings' declarations.

Each setting is declared once, as a field of its model (PipelineConfig, HParams, MapOptions) made
with setting(): name, type, default, choices (a Literal) and help text. add_arguments() turns the
fields into argparse flags (flag name from the field's name or its declared `flag`, type from the
annotation, choices from the Literal, the model's default in the help), flag() names a field's flag
inside error lines, and parse_overrides() reads ``--set key=value`` for any key (keys()).

The pipeline config (pipeline/config.py) and the hyperparameters (components/hparams.py) are
pydantic dataclasses built from these types, so a YAML file, a flag and a Python caller are all
checked the same way. What is unambiguous is coerced (``"10"`` -> 10, ``"0.9"`` -> 0.9, ``10.0`` ->
10); anything else is refused with one line naming the key, the value and what was expected:

    config key 'hparams.epochs': got 'ten', expected a valid integer, unable to parse string as an integer

Numbers refuse booleans (``epochs: true`` is a typo, not 1), and NaN/infinity (a threshold of NaN
would silently switch a check off: nothing is greater than NaN).
"""
from __future__ import annotations

import dataclasses
import difflib
import reprlib
from typing import (
    Annotated,
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    Literal,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    get_args,
    get_origin,
    get_type_hints,
)

from pydantic import BeforeValidator, ConfigDict, Field, ValidationError
from pydantic.fields import FieldInfo

from schema.errors import ConfigError
from schema.validation import requirement, unwrap

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


def _expected(err: Mapping[str, Any]) -> str:
    """What the value should have been, after "got ...,": our own checks' messages say it already."""
    kind, text = requirement(err)
    return {"bound": f"expected a number {text}", "requirement": f"expected {text}"}.get(kind, text)


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


# ---------------------------------------------------------------------------------------------
# One declaration per setting: a field's name, type, default, choices (Literal) and help text
# (description) are declared once, in its model; the command lines, the --set overrides and the
# flag names inside error messages are derived from it here.

def setting(default: Any = None, description: str = "", *, default_factory: Optional[Callable[[], Any]] = None,
            flag: Optional[str] = None, group: Optional[str] = None,
            aliases: Optional[Mapping[str, Any]] = None) -> Any:
    """A model field (pydantic ``Field``) with its help text and command-line metadata.

    `group`: the command line's group the flag appears in (None: no flag; the key is still set by
    YAML and ``--set``). `flag`: the flag when it is not the field's name (``--pipeline-root`` for
    pipeline_root_uri). `aliases`: further flags that each store a constant (``--no-augment``: "none").
    """
    extra: Dict[str, Any] = {k: v for k, v in (("flag", flag), ("group", group), ("aliases", dict(aliases or {}))) if v}
    if default_factory is not None:
        return Field(default_factory=default_factory, description=description, json_schema_extra=extra or None)
    return Field(default, description=description, json_schema_extra=extra or None)


def dataclass_setting(default: Any, description: str, *, flag: Optional[str] = None, group: Optional[str] = None,
                      aliases: Optional[Mapping[str, Any]] = None) -> Any:
    """setting() for a plain (stdlib) dataclass, one whose own __post_init__ validates (MapOptions)."""
    extra = {k: v for k, v in (("flag", flag), ("group", group), ("aliases", dict(aliases or {}))) if v}
    return dataclasses.field(default=default, metadata={"description": description, "cli": extra})


def model_fields(cls: Any) -> Dict[str, FieldInfo]:
    """Each field name -> FieldInfo of a settings dataclass (pydantic, or plain with dataclass_setting fields).

    In declaration order.
    """
    if hasattr(cls, "__pydantic_fields__"):
        return dict(cls.__pydantic_fields__)
    hints = get_type_hints(cls, include_extras=True)
    return {f.name: FieldInfo(annotation=hints[f.name], default=f.default, description=f.metadata.get("description"),
                              json_schema_extra=f.metadata.get("cli") or None)
            for f in dataclasses.fields(cls)}


def _meta(info: FieldInfo) -> Dict[str, Any]:
    return info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}


def choices(cls: Any, name: str) -> Optional[Tuple[Any, ...]]:
    """The values a Literal field allows (None for other fields)."""
    kind = unwrap(model_fields(cls)[name].annotation)
    return get_args(kind) if get_origin(kind) is Literal else None


def flag(cls: Any, name: str) -> str:
    """The command-line flag of field `name`.

    Declared in its metadata, else from its name (``batch_size`` -> ``--batch-size``; a switch that is on by
    default: ``--no-...``).
    """
    info = model_fields(cls)[name]
    if _meta(info).get("flag"):
        return _meta(info)["flag"]
    stem = name.replace("_", "-")
    return f"--no-{stem}" if unwrap(info.annotation) is bool and info.default is True else f"--{stem}"


def flag_and_key(cls: Any, name: str, prefix: str = "") -> str:
    """How an error names a setting.

    Its flag and its YAML key, e.g. "--pipeline-root (config key 'pipeline_root_uri')".
    """
    return f"{flag(cls, name)} (config key '{prefix}{name}')"


def _nested(cls: Any, name: str) -> Optional[Any]:
    kind = unwrap(model_fields(cls)[name].annotation)
    return kind if hasattr(kind, "__pydantic_fields__") else None


def keys(cls: Any, prefix: str = "") -> List[str]:
    """Every settable key of a model, nested models' as ``hparams.batch_size``."""
    out: List[str] = []
    for name in model_fields(cls):
        inner = _nested(cls, name)
        out += keys(inner, f"{prefix}{name}.") if inner else [prefix + name]
    return out


def _shown_default(info: FieldInfo) -> str:
    default = info.get_default(call_default_factory=True)
    if default in (None, "", [], ()) or isinstance(default, bool):
        return ""
    if isinstance(default, tuple):  # a pair such as a DN range, as the flag takes it: 0,2750
        default = ",".join(f"{v:g}" if isinstance(v, float) else str(v) for v in default)
    return f" (default {default})"


def add_arguments(parser: Any, cls: Any, group: Optional[str], prefix: str = "",
                  names: Sequence[str] = ()) -> List[str]:
    """Add a flag to `parser` for each field of `cls` declared in `group` (or named in `names`); returns their dests.

    `parser` is an ArgumentParser or an argument group. Each flag takes its name and aliases from the field's metadata,
    its type from the annotation, its choices from the Literal and its help from the description, with the model's
    default; it stores into dest ``prefix + name`` (None when not given).
    """
    dests: List[str] = []
    for name, info in model_fields(cls).items():
        meta = _meta(info)
        if name not in names and (group is None or meta.get("group") != group):
            continue
        dest, kind, help_text = prefix + name, unwrap(info.annotation), (info.description or "") + _shown_default(info)
        option = flag(cls, name)
        if kind is bool:
            parser.add_argument(option, dest=dest, action="store_const", const=info.default is not True,
                                default=None, help=help_text)
        else:
            allowed = choices(cls, name)
            parser.add_argument(option, dest=dest, default=None, help=help_text, choices=allowed,
                                type=kind if kind in (int, float) else None,  # others: text the model reads
                                metavar=None if allowed else option.lstrip("-").replace("-", "_").upper())
        for alias, const in meta.get("aliases", {}).items():
            parser.add_argument(alias, dest=dest, action="store_const", const=const,
                                help=f"the same as {option} {const}")
        dests.append(dest)
    return dests


def given(args: Any, dests: Iterable[str]) -> Dict[str, Any]:
    """The flags among `dests` that were given, as a nested mapping ({"hparams": {"epochs": 3}})."""
    return nest({dest: getattr(args, dest) for dest in dests if getattr(args, dest, None) is not None})


def nest(flat: Mapping[str, Any]) -> Dict[str, Any]:
    """{"hparams.epochs": 3, "data": x} -> {"hparams": {"epochs": 3}, "data": x}."""
    out: Dict[str, Any] = {}
    for key, value in flat.items():
        head, _, rest = key.partition(".")
        if rest:
            out.setdefault(head, {})[rest] = value
        else:
            out[key] = value
    return out


SET_FLAG = "--set"


def parse_overrides(items: Sequence[str], cls: Any) -> Dict[str, Any]:
    """``--set KEY=VALUE`` items -> a nested mapping of changes for `cls`.

    The value is read as a YAML scalar or flow list (``32``, ``0.9``, ``true``, ``[--a, --b]``), as a YAML file's
    value would be; the model then validates it like any other. An unknown key is one line naming the closest known
    one.
    """
    known = keys(cls)
    flat: Dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"{SET_FLAG} {short_repr(item)}: give KEY=VALUE, e.g. {SET_FLAG} hparams.batch_size=32")
        if key not in known:
            guess = closest(key[:MAX_VALUE_CHARS], known)
            hint = f"; did you mean {guess!r}?" if guess else f"; known keys: {', '.join(known)}"
            raise ConfigError(f"{SET_FLAG} {short_repr(item)}: unknown configuration key {short_repr(key)}{hint}")
        flat[key] = _yaml_value(text)
    return nest(flat)


def _yaml_value(text: str) -> Any:
    import yaml

    if not text.strip():
        return ""
    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return text  # not YAML: the text itself (the model says whether a string is wanted)
