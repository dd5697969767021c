"""Generic input validation against botocore's model, with AWS-shaped messages.

Checks what AWS checks from the model: required members, types, enums, string lengths, patterns,
numeric ranges, list and map sizes, map keys and values, and members the operation does not have.
Messages follow AWS's usual form::

    1 validation error detected: Value 'x' at 'name' failed to satisfy constraint: Member must ...

Patterns in botocore's models are Java regular expressions matched against the whole value (the
AWS API reference prints them anchored). Some use Unicode property classes such as ``\\p{L}``:
they are compiled with the third-party ``regex`` module when it is installed, otherwise translated
into explicit character ranges built from :mod:`unicodedata`. A pattern that still does not compile
is skipped (logged once) rather than rejecting valid input.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import sys
import unicodedata
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from botocore.model import Shape

from mwaa_iac.local.emulator.exceptions import ValidationException

log = logging.getLogger(__name__)

try:  # optional: the `regex` module understands \p{..} natively
    import regex as _regex_module  # type: ignore[import-untyped]
except ImportError:  # pragma: no cover - depends on the environment
    _regex_module = None

_PROPERTY_RE = re.compile(r"\\([pP])\{(\^?)([A-Za-z_]+)\}|\\([pP])([LMNPSZC])")


@lru_cache(maxsize=64)
def _category_ranges(prefix: str) -> str:
    """A character-class body (no brackets) for every code point whose general category starts with
    ``prefix`` (``L``, ``Lu``, ``N``, ...)."""
    ranges: list[str] = []
    start = None
    previous = None
    for code in range(sys.maxunicode + 1):
        surrogate = 0xD800 <= code <= 0xDFFF
        inside = not surrogate and unicodedata.category(chr(code)).startswith(prefix)
        if inside and start is None:
            start = code
        if not inside and start is not None:
            ranges.append(_class_range(start, previous))
            start = None
        previous = code
    if start is not None:
        ranges.append(_class_range(start, sys.maxunicode))
    return "".join(ranges)


def _class_range(first: int | None, last: int | None) -> str:
    assert first is not None and last is not None
    if first == last:
        return f"\\U{first:08x}"
    return f"\\U{first:08x}-\\U{last:08x}"


_CATEGORY_ALIASES = {
    "Letter": "L",
    "Alpha": "L",
    "IsAlphabetic": "L",
    "Number": "N",
    "Digit": "Nd",
    "IsDigit": "Nd",
    "Punct": "P",
    "Space": "Z",
    "Separator": "Z",
    "Symbol": "S",
    "Mark": "M",
}


def translate_java_pattern(pattern: str) -> str:
    """Rewrite Java's ``\\p{X}``/``\\P{X}`` for Python's :mod:`re` (other syntax is shared)."""
    out: list[str] = []
    in_class = False
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            found = _PROPERTY_RE.match(pattern, i)
            if found:
                negated_letter = found.group(1) or found.group(4)
                caret = found.group(2)
                name = found.group(3) or found.group(5)
                category = _CATEGORY_ALIASES.get(name, name.removeprefix("Is"))
                body = _category_ranges(category)
                negated = (negated_letter == "P") != bool(caret)
                if in_class:
                    if negated:
                        raise ValueError(f"negated property class inside a character class: {found.group(0)}")
                    out.append(body)
                else:
                    out.append(f"[{'^' if negated else ''}{body}]")
                i = found.end()
                continue
            out.append(pattern[i : i + 2])
            i += 2
            continue
        if ch == "[" and not in_class:
            in_class = True
        elif ch == "]" and in_class:
            in_class = False
        out.append(ch)
        i += 1
    return "".join(out)


@lru_cache(maxsize=256)
def compile_pattern(pattern: str) -> Callable[[str], bool] | None:
    """A full-match predicate for a model pattern, or None when it cannot be compiled."""
    try:
        if _regex_module is not None:
            compiled = _regex_module.compile(pattern)
        else:
            compiled = re.compile(translate_java_pattern(pattern))
    except Exception as exc:
        log.warning("skipping model pattern %r that does not compile here: %s", pattern, exc)
        return None
    return lambda value: compiled.fullmatch(value) is not None


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def _render(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ", ".join(_render(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_render(v)}" for k, v in value.items()) + "}"
    return str(value)


class _Collector:
    def __init__(self) -> None:
        self.errors: list[str] = []

    def violation(self, value: Any, path: str, constraint: str, *, sensitive: bool = False) -> None:
        shown = "null" if value is None else ("'***'" if sensitive else f"'{_render(value)}'")
        self.errors.append(f"Value {shown} at '{path}' failed to satisfy constraint: {constraint}")


_TYPE_CHECKS: dict[str, Callable[[Any], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "long": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "float": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "double": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "list": lambda v: isinstance(v, list),
    "map": lambda v: isinstance(v, dict),
    "structure": lambda v: isinstance(v, dict),
    "blob": lambda v: isinstance(v, str | bytes),
    "timestamp": lambda v: isinstance(v, int | float | str | dt.datetime) and not isinstance(v, bool),
}


def _check(shape: Shape, value: Any, path: str, out: _Collector) -> None:
    sensitive = bool(shape.metadata.get("sensitive"))
    type_name = shape.type_name
    if type_name == "structure" and getattr(shape, "is_document_type", False):
        return  # any JSON value
    check = _TYPE_CHECKS.get(type_name)
    if check is not None and not check(value):
        out.violation(value, path, f"Member must be of type {type_name}", sensitive=sensitive)
        return
    meta = shape.metadata
    if type_name == "string":
        if shape.enum and value not in shape.enum:
            out.violation(value, path, f"Member must satisfy enum value set: [{', '.join(shape.enum)}]")
            return
        _check_size(value, len(value), path, meta, out, sensitive)
        pattern = meta.get("pattern")
        if pattern:
            matcher = compile_pattern(pattern)
            if matcher is not None and not matcher(value):
                out.violation(
                    value,
                    path,
                    f"Member must satisfy regular expression pattern: {pattern}",
                    sensitive=sensitive,
                )
    elif type_name in ("integer", "long", "float", "double"):
        if "min" in meta and value < meta["min"]:
            out.violation(value, path, f"Member must have value greater than or equal to {meta['min']}")
        if "max" in meta and value > meta["max"]:
            out.violation(value, path, f"Member must have value less than or equal to {meta['max']}")
    elif type_name == "list":
        _check_size(value, len(value), path, meta, out, sensitive)
        for index, item in enumerate(value, start=1):
            _check_value(shape.member, item, f"{path}.{index}.member", out)
    elif type_name == "map":
        _check_size(value, len(value), path, meta, out, sensitive)
        for key, item in value.items():
            key_errors = _Collector()
            _check(shape.key, key, path, key_errors)
            for error in key_errors.errors:
                constraint = error.split("failed to satisfy constraint: ", 1)[1]
                out.violation(
                    key, path, f"Map keys must satisfy constraint: [{constraint}]", sensitive=sensitive
                )
            _check_value(shape.value, item, f"{path}.{key}", out)
    elif type_name == "structure":
        validate_structure(shape, value, path, out)


def _check_size(value: Any, size: int, path: str, meta: dict, out: _Collector, sensitive: bool) -> None:
    if "min" in meta and size < meta["min"]:
        out.violation(
            value,
            path,
            f"Member must have length greater than or equal to {meta['min']}",
            sensitive=sensitive,
        )
    if "max" in meta and size > meta["max"]:
        out.violation(
            value, path, f"Member must have length less than or equal to {meta['max']}", sensitive=sensitive
        )


def _check_value(shape: Shape, value: Any, path: str, out: _Collector) -> None:
    if value is None:
        out.violation(None, path, "Member must not be null")
        return
    _check(shape, value, path, out)


def validate_structure(shape: Shape, params: dict, prefix: str, out: _Collector) -> None:
    for name in shape.required_members:
        if params.get(name) is None:
            out.violation(None, f"{prefix}{'.' if prefix else ''}{_camel(name)}", "Member must not be null")
    for name, value in params.items():
        path = f"{prefix}{'.' if prefix else ''}{_camel(name)}"
        member = shape.members.get(name)
        if member is None:
            out.errors.append(f"Unknown parameter at '{path}': must be one of: {', '.join(shape.members)}")
            continue
        if value is not None:  # a null required member was reported above
            _check(member, value, path, out)


def collect_errors(shape: Shape | None, params: dict[str, Any]) -> list[str]:
    """Every violation of ``shape`` by ``params`` (empty when valid)."""
    if shape is None:
        return []
    out = _Collector()
    validate_structure(shape, params, "", out)
    return out.errors


def format_errors(errors: list[str]) -> str:
    count = len(errors)
    return f"{count} validation error{'s' if count != 1 else ''} detected: " + "; ".join(errors)


def validate_input(shape: Shape | None, params: dict[str, Any]) -> None:
    """Raise :class:`ValidationException` listing every violation, as AWS does."""
    errors = collect_errors(shape, params)
    if errors:
        raise ValidationException(format_errors(errors))
