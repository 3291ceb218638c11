"""params.yaml, validated section by section.

Each top-level section of params.yaml has one pydantic model, owned by the package that reads it
(registered in SECTIONS). A stage validates only the sections it declares in dvc.yaml, so DVC's
view of what a stage reads and what the code reads are the same. Any error is one line naming the
file, the dotted key and what is allowed.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

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

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


class ParamsError(ValueError):
    """A params file problem; str() is the one-line message shown to users."""


def _model(section: str) -> type[BaseModel]:
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
    shown = repr(value) if not isinstance(value, (dict, list)) else type(value).__name__
    return f"{loc}: {message} (got {shown})"


def _allowed_keys(model: type[BaseModel], loc: tuple) -> list[str]:
    """Field names of the (nested) model at `loc`, for 'unknown key' messages."""
    current: Any = model
    for part in loc:
        if isinstance(part, int) or not (isinstance(current, type) and issubclass(current, BaseModel)):
            continue
        field = current.model_fields.get(part)
        if field is None:
            return []
        annotation = field.annotation
        # unwrap Optional[...] / dict[str, Model] / list[Model] to the model inside
        for arg in (annotation, *getattr(annotation, "__args__", ())):
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                annotation = arg
                break
        current = annotation
    if isinstance(current, type) and issubclass(current, BaseModel):
        return sorted(current.model_fields)
    return []


def read_raw(path: str | Path = DEFAULT_PARAMS) -> dict:
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found") from None
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
    model = _model(section)
    try:
        return model.model_validate(raw.get(section) or {})
    except ValidationError as exc:
        raise ParamsError(f"{path}: {_describe(exc.errors()[0], model, section)}") from None


def load_params(*sections: str, path: str | Path = DEFAULT_PARAMS) -> dict[str, Any]:
    """The named sections, validated, as {name: model}."""
    raw = read_raw(path)
    return {name: load_section(name, path, raw) for name in sections}
