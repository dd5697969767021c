"""What a pull request changed: settings of ``mwaa.yaml`` and the variables/blocks of ``.tf`` and
``.tfvars`` files, as dotted paths with their old and new values. No I/O: texts come in."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

_MISSING = object()
_HCL_LINE_KEYS = ("__start_line__", "__end_line__")


@dataclass(frozen=True)
class Change:
    """One changed key. ``before``/``after`` are None when the key is absent on that side."""

    key: str
    kind: str  # added | removed | changed
    before: Any = None
    after: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "kind": self.kind, "before": self.before, "after": self.after}


def _join(prefix: str, key: str) -> str:
    part = f'["{key}"]' if ("." in key or " " in key or not key) else key
    if not prefix:
        return part
    return prefix + part if part.startswith("[") else f"{prefix}.{part}"


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings → ``{"a.b.c": leaf}``; lists and scalars are leaves. Keys holding dots are
    quoted (``airflow_configuration_options["core.load_examples"]``)."""
    if isinstance(data, Mapping):
        if not data and prefix:
            return {prefix: {}}
        out: dict[str, Any] = {}
        for key in data:
            out.update(flatten(data[key], _join(prefix, str(key))))
        return out
    return {prefix: data}


def diff_mappings(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None) -> list[Change]:
    """Changed leaves between two nested mappings, sorted by key."""
    old = flatten(before or {})
    new = flatten(after or {})
    changes = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, _MISSING), new.get(key, _MISSING)
        if a is _MISSING:
            changes.append(Change(key, "added", None, b))
        elif b is _MISSING:
            changes.append(Change(key, "removed", a, None))
        elif a != b:
            changes.append(Change(key, "changed", a, b))
    return changes


MASKED = "(masked)"
# Parts of a key that mark its value as a secret: Airflow options such as webserver.secret_key,
# core.fernet_key, database.sql_alchemy_conn, smtp.smtp_password, secrets.backend_kwargs.
_SENSITIVE_PARTS = (
    "password",
    "secret",
    "token",
    "fernet",
    "credential",
    "private",
    "_conn",
    "kwargs",
    "auth",
)


def is_sensitive(key: str) -> bool:
    lowered = key.lower()
    return any(part in lowered for part in _SENSITIVE_PARTS)


def mask_sensitive(changes: list[Change]) -> list[Change]:
    """The same changes with the values of secret-looking keys replaced by ``(masked)``: a pull
    request comment is read by everyone with access to the repository."""
    return [
        Change(
            c.key,
            c.kind,
            None if c.before is None else MASKED,
            None if c.after is None else MASKED,
        )
        if is_sensitive(c.key)
        else c
        for c in changes
    ]


# --------------------------------------------------------------------------------------------------
# Terraform files
# --------------------------------------------------------------------------------------------------


def _strip_interpolation(value: str) -> str:
    if value.startswith("${") and value.endswith("}"):
        return value[2:-1]
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def _is_parser_key(key: object) -> bool:
    return isinstance(key, str) and key.startswith("__") and key.endswith("__")


def normalize_hcl(value: Any, *, attribute: bool = False) -> Any:
    """Make python-hcl2's output comparable and readable: drop its line-number keys, merge repeated
    blocks (``[{"name": {...}}, ...]``) into one mapping, unwrap single-valued attributes (older
    python-hcl2 releases wrap every attribute value in a list) and ``${...}`` around expressions."""
    if isinstance(value, Mapping):
        # python-hcl2 8 adds "__comments__" and "__is_block__" keys: neither is configuration.
        return {
            str(k): normalize_hcl(v, attribute=True)
            for k, v in value.items()
            if k not in _HCL_LINE_KEYS and not _is_parser_key(k)
        }
    if isinstance(value, list):
        if value and all(isinstance(v, Mapping) for v in value):
            merged: dict[str, Any] = {}
            blocks = [normalize_hcl(v) for v in value]
            if all(len(b) == 1 for b in blocks):
                for block in blocks:
                    for label, body in block.items():
                        if label in merged and isinstance(merged[label], dict) and isinstance(body, dict):
                            merged[label] = {**merged[label], **body}
                        else:
                            merged[label] = body
                return merged
            return blocks if len(blocks) != 1 else blocks[0]
        items = [normalize_hcl(v) for v in value]
        return items[0] if attribute and len(items) == 1 else items
    if isinstance(value, str):
        return _strip_interpolation(value)
    return value


@dataclass(frozen=True)
class FileChange:
    """A changed Terraform file: its status and changed keys (or why it could not be parsed)."""

    file: str
    status: str  # added | removed | modified
    changes: tuple[Change, ...] = ()
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "status": self.status,
            "changes": [c.to_dict() for c in self.changes],
            "error": self.error,
        }


HclParser = Callable[[str], Any]


def parse_hcl(text: str) -> Any:
    """python-hcl2's parse of ``text`` (a .tf or .tfvars file)."""
    import hcl2

    return hcl2.loads(text)


def diff_terraform_files(
    before: Mapping[str, str], after: Mapping[str, str], parse: HclParser = parse_hcl
) -> list[FileChange]:
    """Compare ``{file: text}`` at the base with the same in the pull request."""
    changed: list[FileChange] = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        if old == new:
            continue
        status = "added" if old is None else "removed" if new is None else "modified"
        try:
            old_tree = normalize_hcl(parse(old)) if old is not None else {}
            new_tree = normalize_hcl(parse(new)) if new is not None else {}
        except Exception as exc:  # python-hcl2 raises lark errors of many kinds
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            changed.append(FileChange(name, status, (), f"could not be parsed: {first}"))
            continue
        changes = diff_mappings(
            old_tree if isinstance(old_tree, Mapping) else {"(file)": old_tree},
            new_tree if isinstance(new_tree, Mapping) else {"(file)": new_tree},
        )
        if changes or status != "modified":
            changed.append(FileChange(name, status, tuple(changes)))
    return changed
