"""params.yaml, validated section by section.

Each top-level section of params.yaml has one pydantic model, owned by the package that reads it
(registered in SECTIONS). A stage validates only the sections it declares in dvc.yaml, so DVC's
view of what a stage reads and what the code reads are the same. Any error is one line naming the
file, the dotted key and what is allowed.

Nothing falls back silently: a section a stage reads must be present as a mapping (`section: {}`
asks for every default), a key given twice in one mapping is an error, floats must be finite, and
paths, names and lists of distinct things (NonEmptyStr, UniqueList) may not be empty or repeat.
A YAML syntax error names the line and column.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_args, get_origin

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, ValidationError

# section name -> "module:Model"
SECTIONS: dict[str, str] = {
    "data": "speciarl.data.params:DataParams",
    "bootstrap": "speciarl.policy.params:BootstrapParams",
    "policy": "speciarl.policy.params:PolicyParams",
    "harvest": "speciarl.policy.params:HarvestParams",
    "predict": "speciarl.policy.params:PredictParams",
    "judge": "speciarl.judge.params:JudgeParams",
    "train": "speciarl.train.params:TrainParams",
    "evaluate": "speciarl.evaluate.params:EvaluateParams",
}

DEFAULT_PARAMS = Path("params.yaml")


class Section(BaseModel):
    """Base for every params model: unknown keys are errors, values are checked on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False, allow_inf_nan=False)


class ParamsError(ValueError):
    """A params file problem; str() is the one-line message shown to users."""


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


def _distinct(items: list) -> list:
    seen = set()
    for item in items:
        if item in seen:
            raise ValueError(f"lists {item!r} twice")
        seen.add(item)
    return items


Item = TypeVar("Item")
# A path, model id or name: "" would silently mean the current folder (or nothing).
NonEmptyStr = Annotated[str, AfterValidator(_not_blank)]
# A list of distinct things (datasets, splits, prompts): a repeat would be done, or counted, twice.
UniqueList = Annotated[list[Item], AfterValidator(_distinct)]


def section_model(section: str) -> type[BaseModel]:
    module, _, name = SECTIONS[section].partition(":")
    return getattr(importlib.import_module(module), name)


def _describe(error: dict, model: type[BaseModel], section: str) -> str:
    loc = ".".join(str(part) for part in (section, *error["loc"]))
    if error["type"] == "extra_forbidden":
        allowed = _allowed_keys(model, error["loc"][:-1])
        hint = f" (allowed: {', '.join(allowed)})" if allowed else ""
        return f"{loc}: unknown key{hint}"
    message = error["msg"]
    if error["type"] == "missing":
        return f"{loc}: required key is missing"
    value = error.get("input")
    if isinstance(value, (dict, list)):  # a whole mapping or list says nothing a reader can use
        return f"{loc}: {message}"
    return f"{loc}: {message} (got {value!r})"


def _is_model(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the (nested) model at `loc`, for 'unknown key' messages.

    `loc` walks fields of models, keys of dicts (train.runs.<run>) and indices of lists.
    """
    current: Any = model
    for part in loc:
        if _is_model(current):
            field = current.model_fields.get(part)
            if field is None:
                return []
            current = field.annotation
        else:  # a dict key or list index: step into the value type
            args = get_args(current)
            current = args[-1] if args else None
        # unwrap Optional[Model] (and other unions) to the model inside
        if get_origin(current) not in (dict, list) and not _is_model(current):
            current = next(
                (arg for arg in get_args(current) if _is_model(arg) or get_origin(arg) in (dict, list)), current
            )
    return sorted(current.model_fields) if _is_model(current) else []


class _StrictLoader(yaml.SafeLoader):
    """safe_load that refuses a key given twice in one mapping (YAML keeps the last one silently).

    Keys brought in by a merge (`<<: *anchor`) may be overridden: that is what a merge is for.
    """

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                if key in seen:
                    mark = key_node.start_mark
                    raise yaml.constructor.ConstructorError(
                        None, None, f"key {key!r} given twice (first on line {seen[key] + 1})", mark
                    )
                seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def read_raw(path: str | Path = DEFAULT_PARAMS) -> dict:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found") from None
    return parse_raw(text, path)


def parse_raw(text: str, path: str | Path = DEFAULT_PARAMS) -> dict:
    """The sections of params text (the content of `path`, which errors name), not yet validated."""
    try:
        raw = yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = "; ".join(part for part in (exc.context, exc.problem) if part)
        raise ParamsError(f"{path}: not valid YAML{where}: {problem}") from None
    except yaml.YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of sections at the top level")
    unknown = sorted(set(raw) - set(SECTIONS))
    if unknown:
        raise ParamsError(f"{path}: {unknown[0]}: unknown section (allowed: {', '.join(SECTIONS)})")
    return raw


def load_section(section: str, path: str | Path = DEFAULT_PARAMS, raw: dict | None = None) -> Any:
    """Validate and return one section's model. Raises ParamsError with a one-line message."""
    if section not in SECTIONS:
        raise ParamsError(f"{path}: {section}: unknown section (allowed: {', '.join(SECTIONS)})")
    raw = read_raw(path) if raw is None else raw
    if section not in raw:
        raise ParamsError(f"{path}: {section}: required section is missing (`{section}: {{}}` takes every default)")
    values = raw[section]
    if not isinstance(values, dict):
        shown = "nothing" if values is None else repr(values)
        raise ParamsError(
            f"{path}: {section}: expected a mapping of keys, got {shown} (`{section}: {{}}` takes every default)"
        )
    model = section_model(section)
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        raise ParamsError(f"{path}: {_describe(exc.errors()[0], model, section)}") from None


def load_params(*sections: str, path: str | Path = DEFAULT_PARAMS) -> dict[str, Any]:
    """The named sections, validated, as {name: model}."""
    raw = read_raw(path)
    return {name: load_section(name, path, raw) for name in sections}
