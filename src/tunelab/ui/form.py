"""The training form, generated from the config schema itself, and what it amounts to.

:func:`form_tree` walks :class:`~tunelab.config.RunConfig` in the order ``tunelab init``
writes it (top-level keys, then each section and its sub-sections): every key with its
type, default and description, so the form cannot drift from the config. What a user changes
becomes the CLI's own ``key=value`` overrides (:func:`overrides_from_form`); they are
validated by the same :func:`~tunelab.config.build_config` the CLI calls, and shown as the
equivalent YAML and ``tunelab train`` command (:func:`equivalent`).
"""

from __future__ import annotations

import re
import shlex
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Union

import yaml
from pydantic import BaseModel

from tunelab.config import RunConfig, build_config, set_dotted, yaml_value

# Config keys that `tunelab train` takes as options of their own (the rest go to --set); a
# test checks each against the CLI's help.
TRAIN_FLAGS = {
    "task": "--task",
    "data.train": "--data",
    "data.validation": "--validation",
    "data.test": "--test",
    "data.text_column": "--text-column",
    "data.text_pair_column": "--text-pair-column",
    "data.label_column": "--label-column",
    "data.label_separator": "--label-separator",
    "data.encoding": "--encoding",
    "data.format": "--format",
    "model.name": "--model",
    "peft.method": "--peft",
    "output": "--output",
    "seed": "--seed",
}
# Options of other commands that name a config key in their errors (tunelab doctor's).
OTHER_FLAGS = {"--text-column": "data.text_column", "--label-column": "data.label_column"}
# Keys whose values are paths the workbench reads or writes: they must stay in the workspace.
WORKSPACE_PATHS = ("data.train", "data.validation", "data.test", "output")


def _without_none(annotation: Any) -> tuple[Any, bool]:
    """The annotation without ``None``, and whether ``None`` was allowed."""
    if typing.get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        nullable = len(args) < len(typing.get_args(annotation))
        return (args[0] if len(args) == 1 else Union[tuple(args)]), nullable  # noqa: UP007
    return annotation, False


def _literals(annotation: Any) -> list[Any]:
    """Every value a ``Literal`` (or a union holding some) names."""
    if typing.get_origin(annotation) is Literal:
        return list(typing.get_args(annotation))
    if typing.get_origin(annotation) in (Union, types.UnionType):
        return [v for a in typing.get_args(annotation) for v in _literals(a)]
    return []


def _base(annotation: Any) -> Any:
    """``Annotated[float, ...]`` as ``float``."""
    while typing.get_origin(annotation) is typing.Annotated:
        annotation = typing.get_args(annotation)[0]
    return annotation


def field_spec(key: str, field: Any, default: Any, choices: Sequence[str] = ()) -> dict[str, Any]:
    """How the form shows one config key.

    ``input`` is ``checkbox`` (bool), ``select`` (a fixed set of values), ``number``
    (int/float), ``text`` (a string or path; ``suggest`` lists allowed words beside a number,
    e.g. ``auto``) or ``yaml`` (lists and mappings, written as YAML).
    """
    annotation, nullable = _without_none(field.annotation)
    literals = list(choices) or _literals(annotation)
    plain = _base(annotation)
    union = typing.get_origin(annotation) in (Union, types.UnionType)
    members = typing.get_args(annotation) if union else (annotation,)
    others = [_base(m) for m in members if typing.get_origin(m) is not Literal]
    spec: dict[str, Any] = {
        "kind": "field",
        "key": key,
        "description": field.description or "",
        "default": default,
        "nullable": nullable,
    }
    if plain is bool:
        spec["input"] = "checkbox"
    elif choices or (literals and not others):
        spec.update(input="select", choices=literals)
    elif plain in (int, float) or (literals and others and set(others) <= {int, float}):
        numbers = set(others) | ({plain} if plain in (int, float) else set())
        spec.update(input="number" if not literals else "text", integer=numbers == {int})
        if literals:
            spec["suggest"] = literals
    elif plain in (str, Path) or (literals and set(others) <= {str, Path}):
        spec.update(input="text")
        if literals:
            spec["suggest"] = literals
    else:
        spec["input"] = "yaml"
    spec["shown_default"] = shown(default, spec)
    return spec


def shown(value: Any, spec: Mapping[str, Any]) -> Any:
    """A config value as the form's input holds it: a bool for a checkbox, else text."""
    if spec["input"] == "checkbox":
        return bool(value)
    if value is None:
        return ""
    if spec["input"] == "yaml" or isinstance(value, (list, dict)):
        dumped = yaml.safe_dump(value, default_flow_style=True, allow_unicode=True, width=10**6)
        return dumped.strip().removesuffix("...").strip()
    if isinstance(value, float):
        return repr(value)
    return str(value)


def form_tree(
    schema: type[BaseModel] = RunConfig,
    choices: Mapping[str, Sequence[str]] | None = None,
    prefix: str = "",
) -> list[dict[str, Any]]:
    """Every key of ``schema`` as form fields, in sections as ``tunelab init`` writes them.

    Args:
        choices: allowed values of keys whose field cannot list them (the task names, which
            the registry above the config knows), by dotted key.

    Returns:
        Items in field order: ``{"kind": "field", "key", "input", "default", ...}`` or
        ``{"kind": "section", "key", "description", "items": [...]}``.
    """
    choices = choices or {}
    defaults = schema().model_dump(mode="json")
    items: list[dict[str, Any]] = []
    for name, field in schema.model_fields.items():
        key = prefix + name
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            items.append({
                "kind": "section",
                "key": key,
                "description": field.description or "",
                "items": form_tree(annotation, choices, key + "."),
            })  # fmt: skip
        else:
            items.append(field_spec(key, field, defaults[name], choices.get(key, ())))
    return items


def fields(tree: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The field specs of a form tree by dotted key."""
    found: dict[str, dict[str, Any]] = {}
    for item in tree:
        if item["kind"] == "section":
            found.update(fields(item["items"]))
        else:
            found[item["key"]] = item
    return found


def overrides_from_form(
    values: Mapping[str, Any], specs: Mapping[str, dict[str, Any]]
) -> list[str]:
    """The form's changed values as the CLI's ``key=value`` overrides.

    In the config's order; a value equal to the key's default is left out. Text of a string
    or path key is quoted, so that ``123`` stays a column name; an empty text means null where
    null is allowed; numbers and YAML fields are read as YAML, exactly as ``--set`` reads
    them.
    """
    overrides = []
    order = {key: number for number, key in enumerate(specs)}  # as `tunelab init` lists them
    for key, value in sorted(values.items(), key=lambda item: order.get(item[0], len(order))):
        spec = specs.get(key)
        if spec is None:  # not a config key: let build_config name it
            overrides.append(f"{key}={yaml_value(value)}")
            continue
        if value == spec["shown_default"] or _same_number(value, spec):
            continue
        if spec["input"] == "checkbox":
            text = "true" if value in (True, "true", "on", 1) else "false"
        elif str(value).strip() == "" and spec["nullable"]:
            text = "null"
        elif spec["input"] in ("number", "yaml", "select") or (
            spec.get("suggest") and _is_number(str(value))
        ):
            text = str(value).strip()
        else:
            text = yaml_value(str(value))
        overrides.append(f"{key}={text}")
    return overrides


def _same_number(value: Any, spec: Mapping[str, Any]) -> bool:
    """``3`` typed where the default is ``3.0``: no change."""
    default = spec["default"]
    numeric = isinstance(default, (int, float)) and not isinstance(default, bool)
    return numeric and _is_number(str(value)) and float(value) == float(default)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def equivalent(overrides: list[str]) -> dict[str, Any]:
    """The validated config the overrides give, as YAML and as a ``tunelab train`` command.

    Returns:
        ``{"config": RunConfig, "yaml": the changed keys as a YAML file, "command": the
        one-line command, "overrides": overrides}``.

    Raises:
        UserError: the CLI's sentence for the first bad key or value.
    """
    config = build_config({}, overrides)
    plain = config.model_dump(mode="json")
    tree: dict[str, Any] = {}
    parts = ["tunelab", "train"]
    for item in overrides:
        key = item.split("=", 1)[0]
        value = _dotted(plain, key)
        set_dotted(tree, key, value)
        if key in TRAIN_FLAGS and value is not None and not isinstance(value, (list, dict)):
            parts += [TRAIN_FLAGS[key], _flag_text(value)]
    for item in overrides:  # as typed: --set reads the value as the form's override did
        key = item.split("=", 1)[0]
        if key not in TRAIN_FLAGS or _dotted(plain, key) is None:
            parts += ["--set", item]
    text = yaml.safe_dump(tree, allow_unicode=True, sort_keys=False, width=100) if tree else ""
    command = " ".join(shlex.quote(p) for p in parts)
    return {"config": config, "yaml": text, "command": command, "overrides": overrides}


def _flag_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _dotted(tree: Mapping[str, Any], key: str) -> Any:
    node: Any = tree
    for part in key.split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    return node


_LEADING_KEY = re.compile(r"^(?:error: )?([a-z_]+(?:\.[a-z_0-9]+)*) '")
_QUOTED_KEY = re.compile(r"'([a-z_]+(?:\.[a-z_0-9]+)*)'")
_SET_BY = re.compile(r"set by ([a-z_]+(?:\.[a-z_0-9]+)+)")
_FLAG = re.compile(r"(--[a-z][a-z-]+)")


def field_of(message: str, keys: Sequence[str]) -> str | None:
    """The form field an error sentence is about, so the page can show it next to that field.

    The sentence names it as ``config key 'a.b'``, ``(set by a.b)``, a quoted key, a key it
    starts with (``data.train '../x.csv' is not ...``), or the CLI option that sets it
    (``--text-column``); ``None`` when it names none of ``keys``.
    """
    known = set(keys)
    for pattern in (_SET_BY, _QUOTED_KEY, _LEADING_KEY):
        for found in pattern.findall(message):
            if found in known:
                return found
    flags = {flag: key for key, flag in TRAIN_FLAGS.items()} | OTHER_FLAGS
    for flag in _FLAG.findall(message):
        if flag in flags and flags[flag] in known:
            return flags[flag]
    return None
