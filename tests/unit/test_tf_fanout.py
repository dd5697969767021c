"""The Terraform fan-out stays wired end to end, checked without a Terraform engine.

One MWAA setting travels through several files:

    mwaa_iac/core/config.py                       the mwaa.yaml model
    mwaa_iac/templates/blue-green.tfvars.json.j2  renders it into terraform.tfvars.json
    environments/example/variables.tf             the root module's inputs (= the tfvars keys)
    modules/mwaa-blue-green/variables.tf          the same types, one more time
    modules/mwaa-blue-green/main.tf               module "environment" hands each setting down
    modules/mwaa-environment/variables.tf         one flat variable per setting
    the READMEs                                    their inputs tables

Terraform has no type aliases and no way to share a type between modules, so the object types
(environment, blue/green, routing, dr, logging) are written out in each module that declares them.
These tests parse the .tf files with python-hcl2 and fail, naming the file, the key and the fix,
when a setting was added in one place and missed in another, or when two copies of a type differ.
"""

from __future__ import annotations

import functools
import json
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path

import hcl2
import pytest
from pydantic import BaseModel

from mwaa_iac.core.config import Color, EnvironmentConfig
from mwaa_iac.core.phase_layout import OBJECT_VERSION_KEYS, PHASE_NAMES, layout_for, parse_phase
from mwaa_iac.core.tfvars import default_template, render_tfvars
from mwaa_iac.errors import UsageError
from mwaa_iac.workspace import Workspace

REPO = Path(__file__).resolve().parents[2]
# Every environment with an mwaa.yaml is checked; environments/example always exists.
ENVIRONMENTS = sorted(p.parent.name for p in (REPO / "environments").glob("*/mwaa.yaml"))
TEMPLATE_FILE = "mwaa_iac/templates/blue-green.tfvars.json.j2"

FANOUT = (
    "A setting is wired through: mwaa_iac/core/config.py -> " + TEMPLATE_FILE + " -> "
    "environments/example/variables.tf -> modules/mwaa-blue-green/variables.tf -> "
    'module "environment" in modules/mwaa-blue-green/main.tf -> modules/mwaa-environment/variables.tf '
    "-> the modules' README inputs tables."
)

# Declared inputs (a variable, or an attribute path inside one) that the rendered tfvars never set
# on purpose: the module's default applies. Everything else a module declares must be rendered,
# so that a setting added to a module but not to the template fails here.
NOT_RENDERED: dict[str, str] = {
    "routing.route53_ttl": "mwaa.yaml has no TTL setting; the module's 60 s applies",
}

# Variables of a called module that its caller leaves at their default on purpose.
NOT_PASSED: dict[tuple[str, str], dict[str, str]] = {
    ("environments/example", "mwaa"): {
        "create": "a deployment always creates its environments",
        "execution_role_policy_arns": "mwaa.yaml has no such setting; DR access comes from dr",
    },
    ("modules/mwaa-blue-green", "environment"): {
        "create": "for_each already leaves out the disabled slots (and everything when var.create is false)",
        "execution_role_name": "the default mwaa-<environment name> is unique per colour",
        "execution_role_path": "the module's default path serves both colours",
        "execution_role_permissions_boundary": "not exposed by mwaa-blue-green (no mwaa.yaml setting)",
        "vpc_id": "looked up from the first subnet",
    },
}

# Fields of mwaa.yaml that the tfvars template does not render, and why.
NOT_IN_TEMPLATE: dict[str, str] = {
    "airflow_version": "the slots carry each colour's version (layout)",
    "strategy": "mwaa-iac's planner setting, not a Terraform input",
    "source.requirements_s3_path": "per slot (slots[*].requirements_s3_path): a hop may change it",
    "dr.retention_days": "mwaa-iac prunes old backups itself",
    "dr.require_kms": "mwaa-iac checks the backup bucket before a backup",
    "state": "where mwaa-iac keeps its journals and lock",
    "soak_hours": "mwaa-iac's cutover timing",
    "deployment": "becomes active_color and the slots through the phase layout",
}


# -- Terraform type expressions ------------------------------------------------------------------


@dataclass
class Attr:
    type: TfType
    optional: bool
    default: str | None = None


@dataclass
class TfType:
    kind: str  # string, number, bool, any, list, set, map, tuple, object
    elem: TfType | None = None
    items: list[TfType] = field(default_factory=list)
    attrs: dict[str, Attr] = field(default_factory=dict)

    def __str__(self) -> str:
        if self.elem is not None:
            return f"{self.kind}({self.elem})"
        if self.kind == "tuple":
            return "tuple([" + ", ".join(map(str, self.items)) + "])"
        if self.kind == "object":
            parts = []
            for name, attr in self.attrs.items():
                if not attr.optional:
                    parts.append(f"{name} = {attr.type}")
                elif attr.default is None:
                    parts.append(f"{name} = optional({attr.type})")
                else:
                    parts.append(f"{name} = optional({attr.type}, {attr.default})")
            return "object({" + ", ".join(parts) + "})"
        return self.kind


class _TypeParser:
    """A recursive-descent reader of the type constraints python-hcl2 hands back as text."""

    IDENT = re.compile(r'"?([A-Za-z_][A-Za-z0-9_-]*)"?')

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def parse(self) -> TfType:
        result = self.type()
        self.skip()
        if self.pos != len(self.text):
            raise ValueError(f"trailing text in type {self.text!r} at {self.pos}")
        return result

    def skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def at(self, token: str) -> bool:
        self.skip()
        return self.text.startswith(token, self.pos)

    def expect(self, token: str) -> None:
        if not self.at(token):
            raise ValueError(f"expected {token!r} at {self.pos} in type {self.text!r}")
        self.pos += len(token)

    def ident(self) -> str:
        self.skip()
        match = self.IDENT.match(self.text, self.pos)
        if match is None:
            raise ValueError(f"expected a name at {self.pos} in type {self.text!r}")
        self.pos = match.end()
        return match.group(1)

    def type(self) -> TfType:
        kind = self.ident()
        if kind in ("string", "number", "bool", "any"):
            return TfType(kind)
        self.expect("(")
        if kind in ("list", "set", "map"):
            result = TfType(kind, elem=self.type())
        elif kind == "tuple":
            self.expect("[")
            result = TfType(kind, items=self.sequence("]", self.type))
        elif kind == "object":
            self.expect("{")
            attrs: dict[str, Attr] = {}
            while not self.at("}"):
                name = self.ident()
                self.expect("=")
                attrs[name] = self.attribute()
                if self.at(","):
                    self.expect(",")
            self.expect("}")
            result = TfType(kind, attrs=attrs)
        else:
            raise ValueError(f"unknown type {kind!r} in {self.text!r}")
        self.expect(")")
        return result

    def sequence(self, close: str, item: typing.Callable[[], TfType]) -> list[TfType]:
        items = []
        while not self.at(close):
            items.append(item())
            if self.at(","):
                self.expect(",")
        self.expect(close)
        return items

    def attribute(self) -> Attr:
        start = self.pos
        if self.ident() != "optional" or not self.at("("):
            self.pos = start
            return Attr(self.type(), optional=False)
        self.expect("(")
        inner = self.type()
        default = None
        if self.at(","):
            self.expect(",")
            default = self.expression()
        self.expect(")")
        return Attr(inner, optional=True, default=default)

    def expression(self) -> str:
        """The raw text of an optional() default, up to the ')' that closes optional(."""
        self.skip()
        start, depth, quote = self.pos, 0, False
        while self.pos < len(self.text):
            char = self.text[self.pos]
            if quote:
                if char == "\\":
                    self.pos += 1
                elif char == '"':
                    quote = False
            elif char == '"':
                quote = True
            elif char in "([{":
                depth += 1
            elif char in ")]}":
                if depth == 0:
                    return " ".join(self.text[start : self.pos].split())
                depth -= 1
            self.pos += 1
        raise ValueError(f"unterminated default in type {self.text!r}")


def parse_type(text: str) -> TfType:
    text = text.strip()
    if text.startswith("${") and text.endswith("}"):
        text = text[2:-1]
    return _TypeParser(text).parse()


# -- modules on disk -----------------------------------------------------------------------------


def _unquote(name: str) -> str:
    return name[1:-1] if len(name) >= 2 and name[0] == name[-1] == '"' else name


@dataclass
class Variable:
    name: str
    type: TfType | None
    has_default: bool
    file: str


@dataclass
class ModuleCall:
    name: str
    file: str
    source: str
    args: dict[str, object]


@dataclass
class Module:
    path: str  # relative to the repository
    variables: dict[str, Variable] = field(default_factory=dict)
    outputs: set[str] = field(default_factory=set)
    calls: dict[str, ModuleCall] = field(default_factory=dict)

    @property
    def directory(self) -> Path:
        return REPO / self.path

    def child(self, call: ModuleCall) -> Module | None:
        if not call.source.startswith("."):
            return None
        return load_module((self.directory / call.source).resolve())

    def text_outside_variables(self) -> str:
        return "\n".join(
            p.read_text("utf-8") for p in sorted(self.directory.glob("*.tf")) if p.name != "variables.tf"
        )


META_ARGUMENTS = {"source", "version", "for_each", "count", "providers", "depends_on"}


@functools.cache
def load_module(directory: Path) -> Module:
    module = Module(directory.relative_to(REPO).as_posix())
    for tf_file in sorted(directory.glob("*.tf")):
        rel = tf_file.relative_to(REPO).as_posix()
        with tf_file.open(encoding="utf-8") as handle:
            doc = hcl2.load(handle)
        for block in doc.get("variable", []):
            for raw_name, body in block.items():
                name = _unquote(raw_name)
                declared = body.get("type")
                module.variables[name] = Variable(
                    name, parse_type(declared) if declared else None, "default" in body, rel
                )
        for block in doc.get("output", []):
            module.outputs.update(_unquote(name) for name in block)
        for block in doc.get("module", []):
            for raw_name, body in block.items():
                args = {k: v for k, v in body.items() if not k.startswith("__") and k not in META_ARGUMENTS}
                name = _unquote(raw_name)
                module.calls[name] = ModuleCall(name, rel, _unquote(str(body["source"])), args)
    return module


def terraform_dirs() -> list[Path]:
    dirs = {p.parent for top in ("modules", "environments") for p in (REPO / top).rglob("*.tf")}
    return sorted(d for d in dirs if ".terraform" not in d.parts)


def _ids(paths: list[Path]) -> list[str]:
    return [p.relative_to(REPO).as_posix() for p in paths]


# -- the tfvars mwaa-iac renders for environments/example ----------------------------------------


def rendered_tfvars(env: str) -> tuple[str, list[tuple[str, dict]]]:
    """Every phase's tfvars for environments/<env>, rendered as `mwaa-iac` renders them (the
    environment's own template, else the built-in one), with and without pinned object versions."""
    workspace = Workspace(REPO, env)
    config = workspace.load()
    template, source = workspace.template()
    pins = {color: {key: f"{color}-{key}" for key in OBJECT_VERSION_KEYS} for color in Color}
    renders = []
    for phase_name in [*PHASE_NAMES, "flip"]:
        try:
            phase = parse_phase(phase_name, config)
        except UsageError:  # phases that act on the active colour do not apply
            continue
        for object_versions in (None, pins):
            layout = layout_for(config, phase, object_versions=object_versions)
            text = render_tfvars(config, layout, template, source=source)
            label = f"phase {phase}" + (" with pinned object versions" if object_versions else "")
            renders.append((label, json.loads(text)))
    builtin = source == "the built-in template"
    return (TEMPLATE_FILE if builtin else Path(source).relative_to(REPO).as_posix()), renders


def _declared_paths(declared: TfType, prefix: str) -> set[str]:
    """Every attribute path inside an object type (map/list elements as `*`)."""
    paths: set[str] = set()
    if declared.kind == "object":
        for name, attr in declared.attrs.items():
            path = f"{prefix}.{name}"
            paths.add(path)
            paths |= _declared_paths(attr.type, path)
    elif declared.elem is not None:
        paths |= _declared_paths(declared.elem, f"{prefix}.*")
    return paths


@dataclass
class _Walk:
    where: str  # the template
    var_file: str  # the root module's variables.tf
    seen: set[str]  # paths set by some rendering
    missing: set[str]  # required paths reported as missing
    problems: list[str]


def _check_value(value: object, declared: TfType, path: str, walk: _Walk) -> None:
    if value is None:
        return
    if declared.kind == "object" and isinstance(value, dict):
        for key, item in value.items():
            attr = declared.attrs.get(key)
            if attr is None:
                walk.problems.append(
                    f"{walk.where} sets `{path}.{key}`, but the type of `{path.split('.')[0]}` in "
                    f"{walk.var_file} has no attribute `{key}` (Terraform would "
                    f"drop it silently). Fix: add `{key}` to that object type there and in "
                    f"modules/mwaa-blue-green/variables.tf (and hand it on), or stop rendering it."
                )
                continue
            walk.seen.add(f"{path}.{key}")
            _check_value(item, attr.type, f"{path}.{key}", walk)
        for key, attr in declared.attrs.items():
            if not attr.optional and key not in value:
                walk.missing.add(f"{path}.{key}")
                walk.problems.append(
                    f"{walk.where} does not set `{path}.{key}`, which the type of `{path.split('.')[0]}` "
                    f"in {walk.var_file} requires. Fix: render it in the template, "
                    f"or make it optional(...) in the type."
                )
    elif declared.kind == "map" and isinstance(value, dict) and declared.elem is not None:
        for item in value.values():
            _check_value(item, declared.elem, f"{path}.*", walk)
    elif declared.kind in ("list", "set") and isinstance(value, list) and declared.elem is not None:
        for item in value:
            _check_value(item, declared.elem, f"{path}.*", walk)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_rendered_tfvars_match_the_root_variables(env: str) -> None:
    """Every key the tfvars set is declared (also inside object types), and every declared input
    is set: always the required ones, and the optional ones unless NOT_RENDERED says why not."""
    root = load_module(REPO / "environments" / env)
    var_file = f"{root.path}/variables.tf"
    source, renders = rendered_tfvars(env)
    found: dict[str, list[str]] = {}  # problem -> the renderings that show it
    seen: set[str] = set()
    missing: set[str] = set()
    for label, data in renders:
        where = source
        problems: list[str] = []
        for key, value in data.items():
            variable = root.variables.get(key)
            if variable is None:
                problems.append(
                    f"{where} renders `{key}`, but {var_file} declares no variable `{key}`. Fix: "
                    f'declare it there and pass it to module "mwaa" in {root.path}/main.tf, or stop '
                    f"rendering it."
                )
                continue
            seen.add(key)
            if variable.type is not None:
                _check_value(value, variable.type, key, _Walk(where, var_file, seen, missing, problems))
        for name, variable in root.variables.items():
            if not variable.has_default and name not in data:
                missing.add(name)
                problems.append(
                    f"{where} does not set `{name}`, which {var_file} declares without a default. Fix: "
                    f"render it in the template (from mwaa.yaml), or give it a default."
                )
        for problem in problems:
            found.setdefault(problem, []).append(label)
    problems = [f"{problem} [{'; '.join(labels)}]" for problem, labels in found.items()]
    declared: set[str] = set()
    for name, variable in root.variables.items():
        declared.add(name)
        if variable.type is not None:
            declared |= _declared_paths(variable.type, name)
    for path in sorted(declared - seen - missing - set(NOT_RENDERED)):
        if any(path.startswith(f"{other}.") for other in NOT_RENDERED):
            continue
        problems.append(
            f"{var_file} declares `{path}`, but no rendered phase sets it, so mwaa.yaml cannot change "
            f"it. Fix: render it in {source} (from a field of mwaa_iac/core/config.py), or add "
            f"{path!r} with the reason to NOT_RENDERED in {Path(__file__).name}."
        )
    for path in sorted(set(NOT_RENDERED) - declared):
        problems.append(f"NOT_RENDERED names `{path}`, which {var_file} no longer declares: remove it.")
    for path in sorted(set(NOT_RENDERED) & seen):
        problems.append(f"NOT_RENDERED names `{path}`, which the template now renders: remove it.")
    assert not problems, "\n".join([*problems, FANOUT])


# -- module calls: arguments vs the called module's variables, and the copies of each type -------


def _module_calls() -> list[tuple[Module, ModuleCall]]:
    calls = []
    for directory in terraform_dirs():
        module = load_module(directory)
        calls.extend((module, call) for call in module.calls.values() if call.source.startswith("."))
    return calls


def _call_id(item: tuple[Module, ModuleCall]) -> str:
    return f"{item[0].path}:{item[1].name}"


def _type_at(module: Module, reference: str) -> TfType | None:
    """The declared type of `var.a.b.c` in `module` (optional() unwrapped), or None."""
    name, *attrs = reference.split(".")
    variable = module.variables.get(name)
    current = variable.type if variable else None
    for attr_name in attrs:
        if current is None or current.kind != "object" or attr_name not in current.attrs:
            return None
        current = current.attrs[attr_name].type
    return current


def _type_differences(mine: TfType, theirs: TfType, left: str, right: str, path: str = "") -> list[str]:
    """Readable differences between two copies of a type (labelled left and right), by attribute."""
    if mine.kind == theirs.kind == "object":
        lines = []
        for name in sorted(set(mine.attrs) | set(theirs.attrs)):
            here, there = mine.attrs.get(name), theirs.attrs.get(name)
            where = f"{path}.{name}" if path else name
            if here is None:
                lines.append(f"`{where}` only in {right}")
            elif there is None:
                lines.append(f"`{where}` only in {left}")
            elif (here.optional, here.default) != (there.optional, there.default):
                lines.append(f"`{where}`: {_attr_text(here)} in {left}, {_attr_text(there)} in {right}")
            else:
                lines += _type_differences(here.type, there.type, left, right, where)
        return lines
    if str(mine) == str(theirs):
        return []
    return [f"`{path or '(whole)'}`: {mine} in {left}, {theirs} in {right}"]


def _attr_text(attr: Attr) -> str:
    if not attr.optional:
        return str(attr.type)
    return f"optional({attr.type}" + (f", {attr.default})" if attr.default is not None else ")")


@pytest.mark.parametrize("item", _module_calls(), ids=_call_id)
def test_module_call_arguments_match_the_called_modules_variables(item: tuple[Module, ModuleCall]) -> None:
    caller, call = item
    child = caller.child(call)
    assert child is not None
    child_vars = f"{child.path}/variables.tf"
    problems = []
    for arg in call.args:
        if arg not in child.variables:
            problems.append(
                f'{call.file}: module "{call.name}" passes `{arg}`, but {child_vars} declares no '
                f"variable `{arg}`. Fix: declare it in {child_vars}, or drop the argument."
            )
    for name, variable in child.variables.items():
        if not variable.has_default and name not in call.args:
            problems.append(
                f'{call.file}: module "{call.name}" does not pass `{name}`, which {variable.file} '
                f"declares without a default. Fix: pass it."
            )
    # The pass-through of the deployment's own modules goes both ways: an optional variable that
    # the caller leaves at its default must be listed in NOT_PASSED with the reason.
    allowed = NOT_PASSED.get((caller.path, call.name))
    if allowed is not None:
        for name, variable in child.variables.items():
            if variable.has_default and name not in call.args and name not in allowed:
                problems.append(
                    f'{call.file}: module "{call.name}" does not pass `{name}` ({variable.file}), so '
                    f"that setting cannot reach it. Fix: pass it from {caller.path}, or add {name!r} "
                    f"with the reason to NOT_PASSED[{(caller.path, call.name)!r}] in {Path(__file__).name}."
                )
        for name in sorted(set(allowed) - set(child.variables)):
            problems.append(f"NOT_PASSED names `{name}`, which {child_vars} no longer declares: remove it.")
        for name in sorted(set(allowed) & set(call.args)):
            problems.append(f'NOT_PASSED names `{name}`, which module "{call.name}" now passes: remove it.')
    # Terraform cannot share a type between modules: where a variable (or one of its attributes)
    # is handed on unchanged, the caller's copy of the type must equal the called module's.
    for arg, value in call.args.items():
        match = re.fullmatch(r"\$\{var\.([A-Za-z0-9_.]+)\}", str(value))
        target = child.variables.get(arg)
        if match is None or target is None or target.type is None:
            continue
        mine = _type_at(caller, match.group(1))
        if mine is not None and str(mine) != str(target.type):
            problems.append(
                f'{call.file}: module "{call.name}" passes `var.{match.group(1)}` as `{arg}`, but its type '
                f"in {caller.path}/variables.tf differs from the one in {target.file}:\n"
                + "\n".join(
                    f"    {line}" for line in _type_differences(mine, target.type, caller.path, child.path)
                )
                + "\n"
                f"Terraform cannot share a type between modules, so the copies must be identical: "
                f"copy the type from {target.file} (the module that uses it)."
            )
    assert not problems, "\n".join([*problems, FANOUT])


# Variables of one module that must have the same type (the two slots).
SAME_TYPE = [("blue", "green")]


@pytest.mark.parametrize("directory", terraform_dirs(), ids=_ids(terraform_dirs()))
def test_twin_variables_have_the_same_type(directory: Path) -> None:
    module = load_module(directory)
    problems = []
    for first, second in SAME_TYPE:
        a, b = module.variables.get(first), module.variables.get(second)
        if a is None or b is None or str(a.type) == str(b.type):
            continue
        assert a.type is not None and b.type is not None
        problems.append(
            f"{a.file}: `{first}` and `{second}` must have the same type, but:\n"
            + "\n".join(f"    {line}" for line in _type_differences(a.type, b.type, first, second))
            + f"\nFix: make the two types in {a.file} identical."
        )
    assert not problems, "\n".join(problems)


# -- every declared input is used ----------------------------------------------------------------


@pytest.mark.parametrize("directory", terraform_dirs(), ids=_ids(terraform_dirs()))
def test_every_variable_and_object_attribute_is_used(directory: Path) -> None:
    """A variable nobody reads, or an attribute of an object variable that is neither read nor
    handed on whole, is a setting that silently does nothing (e.g. a new `environment` attribute
    that mwaa-blue-green forgot to pass to mwaa-environment)."""
    module = load_module(directory)
    text = module.text_outside_variables()
    problems = []
    for name, variable in module.variables.items():
        if not re.search(rf"\bvar\.{name}\b", text):
            problems.append(
                f"{variable.file} declares `{name}`, but no other file of {module.path} reads "
                f"var.{name}. Fix: use it (e.g. pass it to the module that needs it), or remove it."
            )
            continue
        if variable.type is None or variable.type.kind != "object":
            continue
        if re.search(rf"\bvar\.{name}\b(?!\s*[.\[])", text):
            continue  # handed on whole: the module call check compares the types
        for attr in variable.type.attrs:
            if not re.search(rf"\bvar\.{name}\.{attr}\b", text):
                problems.append(
                    f"{variable.file} declares `{name}.{attr}`, but {module.path} never reads "
                    f"var.{name}.{attr}. Fix: hand it on (e.g. an argument of the module call in "
                    f"{module.path}/main.tf), or remove it from the type."
                )
    assert not problems, "\n".join([*problems, FANOUT])


# -- README inputs and outputs tables ------------------------------------------------------------

TF_DOCS_INPUT = re.compile(r'^\| <a name="input_([^"]+)"></a>.*\|\s*(yes|no)\s*\|\s*$', re.MULTILINE)
TF_DOCS_OUTPUT = re.compile(r'^\| <a name="output_([^"]+)"></a>', re.MULTILINE)


def _readme_dirs() -> list[Path]:
    return [d for d in terraform_dirs() if (d / "README.md").is_file()]


@pytest.mark.parametrize("directory", _readme_dirs(), ids=_ids(_readme_dirs()))
def test_readme_lists_every_input_and_output(directory: Path) -> None:
    module = load_module(directory)
    readme_path = f"{module.path}/README.md"
    readme = (directory / "README.md").read_text("utf-8")
    problems = []
    if "<!-- BEGIN_TF_DOCS -->" in readme:
        block = readme.split("<!-- BEGIN_TF_DOCS -->", 1)[1].split("<!-- END_TF_DOCS -->", 1)[0]
        fix = "Fix: regenerate the BEGIN_TF_DOCS/END_TF_DOCS block (terraform-docs), or edit the row."
        inputs = {name: required == "yes" for name, required in TF_DOCS_INPUT.findall(block)}
        outputs = set(TF_DOCS_OUTPUT.findall(block))
        for name, variable in module.variables.items():
            if name not in inputs:
                problems.append(f"{readme_path}: the Inputs table lacks `{name}` ({variable.file}). {fix}")
            elif inputs[name] == variable.has_default:
                problems.append(
                    f"{readme_path}: the Inputs table says `{name}` is "
                    f"{'' if inputs[name] else 'not '}required, {variable.file} disagrees. {fix}"
                )
        problems += [
            f"{readme_path}: the Inputs table lists `{name}`, which {module.path} does not declare. {fix}"
            for name in sorted(set(inputs) - set(module.variables))
        ]
        problems += [
            f"{readme_path}: the Outputs table lacks `{name}`. {fix}"
            for name in sorted(module.outputs - outputs)
        ]
        problems += [
            f"{readme_path}: the Outputs table lists `{name}`, which {module.path} does not declare. {fix}"
            for name in sorted(outputs - module.outputs)
        ]
    else:
        # A hand-written README (environments/<env>): every input and output named in backticks.
        for kind, names in (("variable", module.variables), ("output", module.outputs)):
            problems += [
                f"{readme_path} never names the {kind} `{name}`. Fix: describe it there."
                for name in sorted(names)
                if f"`{name}`" not in readme
            ]
    assert not problems, "\n".join(problems)


# -- mwaa.yaml fields vs the template ------------------------------------------------------------


def _sub_model(annotation: object) -> type[BaseModel] | None:
    candidates = [annotation, *typing.get_args(annotation)]
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def test_every_config_field_reaches_the_template_or_says_why_not() -> None:
    """A field added to mwaa_iac/core/config.py but not to the template never reaches Terraform."""
    # Only the Jinja expressions and statements count, not the JSON keys around them.
    code = " ".join(re.findall(r"\{\{.*?\}\}|\{%.*?%\}", default_template(), re.DOTALL))
    used: set[str] = set()
    for top, sub in re.findall(r"\bconfig\.(\w+)(?:\.(\w+))?", code):
        used.add(f"{top}.{sub}" if sub else top)
    # The template context hands these sub-models over as plain dicts (mwaa_iac/core/tfvars.py).
    for top, sub in re.findall(r"(?<![.\w])(logging|routing|tags|dr)\b(?:\.(\w+))?", code):
        used.add(f"{top}.{sub}" if sub else top)
    problems = []
    expected: set[str] = set()
    for name, info in EnvironmentConfig.model_fields.items():
        expected.add(name)
        model = _sub_model(info.annotation)
        if name in NOT_IN_TEMPLATE or name in used or model is None:
            if name not in NOT_IN_TEMPLATE and name not in used:
                problems.append(
                    f"mwaa_iac/core/config.py: `{name}` never reaches {TEMPLATE_FILE}. Fix: render it "
                    f"(and declare it along the fan-out), or add {name!r} with the reason to "
                    f"NOT_IN_TEMPLATE in {Path(__file__).name}."
                )
            continue
        for sub in model.model_fields:
            path = f"{name}.{sub}"
            expected.add(path)
            if path not in used and path not in NOT_IN_TEMPLATE:
                problems.append(
                    f"mwaa_iac/core/config.py: `{path}` never reaches {TEMPLATE_FILE}. Fix: render it "
                    f"(and declare it along the fan-out), or add {path!r} with the reason to "
                    f"NOT_IN_TEMPLATE in {Path(__file__).name}."
                )
    for path in sorted(set(NOT_IN_TEMPLATE) - expected):
        problems.append(f"NOT_IN_TEMPLATE names `{path}`, which mwaa.yaml no longer has: remove it.")
    for path in sorted(set(NOT_IN_TEMPLATE) & used):
        problems.append(f"NOT_IN_TEMPLATE names `{path}`, which the template now renders: remove it.")
    assert not problems, "\n".join([*problems, FANOUT])


# -- the checker itself --------------------------------------------------------------------------


def test_type_parser_round_trips_the_constraints_python_hcl2_returns() -> None:
    text = (
        "${object({a = string, b = optional(list(string), []), "
        'c = optional(object({d = optional(bool, true), e = optional(string, "x, (y)")}), {}), '
        "f = map(number), g = tuple([string, number])})}"
    )
    parsed = parse_type(text)
    assert str(parsed) == text[2:-1]
    assert parsed.attrs["c"].optional and parsed.attrs["c"].default == "{}"
    assert parsed.attrs["c"].type.attrs["e"].default == '"x, (y)"'
    assert not parsed.attrs["a"].optional
    assert _declared_paths(parsed, "v") >= {"v.a", "v.c.d", "v.c.e", "v.f"}
