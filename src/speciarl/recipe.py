"""`speciarl params apply RECIPE [--params params.yaml]`: apply a recipe to params.yaml in one command.

A recipe is a params file that holds only the keys it sets (configs/paper_recipe.yaml). The merge
rule follows the schemas (src/speciarl/config.py): where params.yaml and the recipe both hold a
mapping of a schema's fields (a section, policy.vllm, data.cub, judge.llm), the recipe's keys are
set one by one and the keys it does not name keep their values. Anything else the recipe gives
replaces the current value whole: a value, a list, or a mapping of names (train.runs,
evaluate.groups, data.cub.subset, judge.taxonomy.close_levels_by_dataset). So the recipe's runs are
the only runs afterwards, and its groups the only groups.

The merged file is validated before anything is written: every section by its schema, as the
stages will read it, and the policy's source across sections (bootstrap.build against policy.model;
see check_policy_source). Then params.yaml is replaced atomically, keeping its comments, anchors and
key order (ruamel.yaml round trip; a value the recipe replaces comes without the recipe's comments),
and every change is printed as `key: old -> new`. Any problem is one line naming the file and key, and leaves
params.yaml as it was.
"""

from __future__ import annotations

import io
import json
import os
import types
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Union, get_args, get_origin

from pydantic import BaseModel
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark, YAMLError
from ruamel.yaml.tokens import CommentToken

from speciarl.atomic import atomic_write_text
from speciarl.config import DEFAULT_PARAMS, SECTIONS, ParamsError, load_section, parse_raw, section_model
from speciarl.policy.params import check_policy_source

ABSENT = "(absent)"


def _round_trip_yaml() -> YAML:
    yaml = YAML()
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a long line that params.yaml keeps on one
    yaml.representer.add_representer(type(None), lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null"))
    return yaml


def _load(yaml: YAML, path: Path) -> tuple[dict, Any]:
    """(the file parsed as the stages parse it, its round-trip tree)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise ParamsError(f"{path}: file not found") from None
    raw = parse_raw(text, path)  # the project's checks first: YAML errors with line and column, known sections
    try:
        return raw, yaml.load(text)
    except YAMLError as exc:
        raise ParamsError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None


def _field_model(model: type[BaseModel], key: str) -> type[BaseModel] | None:
    """The schema model of field `key` of `model` when that field is itself a mapping of fields."""
    field = model.model_fields.get(key)
    if field is None:
        return None
    annotation = field.annotation
    candidates = get_args(annotation) if get_origin(annotation) in (Union, types.UnionType) else (annotation,)
    return next((arg for arg in candidates if isinstance(arg, type) and issubclass(arg, BaseModel)), None)


def merge(params: dict, recipe: dict, model: type[BaseModel] | None) -> None:
    """Set the recipe's keys into `params` (round-trip mappings), by the rule of the module docstring;
    `model` is the schema of the mapping, None for the whole file (whose keys are sections)."""
    for key, value in recipe.items():
        sub_model = section_model(key) if model is None else _field_model(model, key)
        if sub_model is not None and isinstance(value, dict) and isinstance(params.get(key), dict):
            merge(params[key], value, sub_model)
        else:
            trailing = _take_trailing_lines(params, key)
            params[key] = _without_comments(value)
            _put_trailing_lines(params, key, trailing)


# ruamel.yaml keeps the blank and comment lines that follow a value in the comment token of the
# last key before them: of the key itself for a scalar, of the block's last leaf for a block. When a
# value is replaced, those lines are moved to where the new value ends, so that a section keeps the
# blank line and the comments that separate it from the next one.


def _last_leaf(parent: Any, key: Any) -> tuple[Any, Any]:
    """(mapping or list, key) whose comment token ends the block of parent[key]."""
    value = parent[key]
    while isinstance(value, (CommentedMap, CommentedSeq)) and value and not value.fa.flow_style():
        parent, key = value, (list(value)[-1] if isinstance(value, CommentedMap) else len(value) - 1)
        value = parent[key]
    return parent, key


def _take_trailing_lines(parent: Any, key: Any) -> str:
    if key not in parent:
        return ""
    holder, leaf = _last_leaf(parent, key)
    token = holder.ca.items.get(leaf, [None, None, None])[2]
    if token is None:
        return ""
    own_line, _, trailing = token.value.partition("\n")
    token.value = own_line + "\n"
    return trailing


def _put_trailing_lines(parent: Any, key: Any, trailing: str) -> None:
    if not trailing:
        return
    holder, leaf = _last_leaf(parent, key)
    entry = holder.ca.items.setdefault(leaf, [None, None, None, None])
    if entry[2] is None:
        entry[2] = CommentToken("\n" + trailing, CommentMark(0), None)
    else:
        entry[2].value = entry[2].value.rstrip("\n") + "\n" + trailing


def _without_comments(node: Any) -> Any:
    """A recipe value without its comments: params.yaml keeps its own comment on the key, and a
    recipe's comment moved into another file lands on the wrong line (ruamel.yaml keeps comments by
    position, and misplaces one that follows an anchor)."""
    if isinstance(node, (CommentedMap, CommentedSeq)):
        node.ca.comment = None
        node.ca.items.clear()
        node.ca.end = None
        for child in node.values() if isinstance(node, CommentedMap) else node:
            _without_comments(child)
    return node


def _show(value: Any) -> str:
    if isinstance(value, str):
        return value
    text = json.dumps(value)
    if isinstance(value, dict) and len(text) > 160:
        return f"{{{len(value)} keys}}"
    return text


def changes(old: Any, new: Any, where: str = "") -> Iterator[str]:
    """`key: old -> new` for every leaf that differs; a mapping added or removed whole is one line."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in [*new, *(key for key in old if key not in new)]:
            yield from changes(old.get(key, ABSENT), new.get(key, ABSENT), f"{where}.{key}" if where else str(key))
    elif old != new:
        yield f"{where}: {_show(old)} -> {_show(new)}"


@contextmanager
def _working_directory(path: Path) -> Iterator[None]:
    """params' relative paths (policy.model) are relative to the folder of the params file."""
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def validate(raw: dict, path: Path) -> dict:
    """Every section of parsed params validated by its schema, then the policy's source: {section: model}."""
    with _working_directory(path.resolve().parent):
        models = {section: load_section(section, path, raw) for section in SECTIONS}
    check_policy_source(models["bootstrap"], models["policy"], path)
    return models


def apply_recipe(recipe_path: str | Path, params_path: str | Path = DEFAULT_PARAMS) -> list[str]:
    """Merge the recipe into params.yaml, validate, write atomically; the changes, one line each."""
    recipe_path, params_path = Path(recipe_path), Path(params_path)
    yaml = _round_trip_yaml()
    _, recipe = _load(yaml, recipe_path)
    old_raw, params = _load(yaml, params_path)
    merge(params, recipe, None)
    buffer = io.StringIO()
    yaml.dump(params, buffer)
    new_text = buffer.getvalue()
    try:
        new_raw = parse_raw(new_text, params_path)
        validate(new_raw, params_path)
    except ParamsError as exc:
        raise ParamsError(f"{recipe_path} applied to {exc}") from None
    lines = list(changes(old_raw, new_raw))
    if lines:
        atomic_write_text(params_path, new_text)
    return lines


def _apply_command(args) -> int:
    lines = apply_recipe(args.recipe, args.params)
    for line in lines:
        print(line)
    if lines:
        print(f"{args.params}: {len(lines)} values changed by {args.recipe}")
    else:
        print(f"{args.params}: already as {args.recipe} sets it")
    return 0


def register(subparsers) -> None:
    params = subparsers.add_parser("params", help="edit params.yaml")
    commands = params.add_subparsers(dest="params_command", required=True)
    apply = commands.add_parser(
        "apply",
        help="apply a recipe (e.g. configs/paper_recipe.yaml) to params.yaml",
        description=__doc__.split("\n\n")[0],
    )
    apply.add_argument("recipe", type=Path, help="the recipe: a params file holding only the keys it sets")
    apply.add_argument(
        "--params", type=Path, default=DEFAULT_PARAMS, help="params file to change (default: params.yaml)"
    )
    apply.set_defaults(func=_apply_command)
