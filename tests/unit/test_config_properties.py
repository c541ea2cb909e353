"""Property-based tests of the config: anything in gives a RunConfig or a UserError, and a
valid config survives the round trip through the YAML a run writes.

Valid values are drawn from each field's own type and bounds (read from the pydantic models),
so a new field is covered without touching this file. Derandomized, no example database.
"""

from __future__ import annotations

import json
import tempfile
import types
import typing
from pathlib import Path
from typing import Any, Literal

import annotated_types
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from tunelab.config import RunConfig, build_config, commented_yaml, load_config
from tunelab.errors import UserError

PROFILE = settings(max_examples=150, deadline=None, derandomize=True, database=None)


def _leaves(model: type[BaseModel], prefix: str = "") -> dict[str, Any]:
    """Dotted key -> FieldInfo for every field that is not itself a section."""
    found: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            found.update(_leaves(annotation, f"{prefix}{name}."))
        else:
            found[f"{prefix}{name}"] = field
    return found


LEAVES = _leaves(RunConfig)
KEYS = sorted(LEAVES)

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
# Long texts with spaces and line breaks: YAML writers wrap those over several lines.
long_text = st.lists(
    st.one_of(st.characters(exclude_categories=("Cs",)), st.sampled_from([" ", "\n", "ab "])),
    max_size=120,
).map("".join)


def _number(kind: type, metadata: list[Any]) -> st.SearchStrategy[Any]:
    low = high = None
    exclude_low = exclude_high = False
    for bound in metadata:
        if isinstance(bound, annotated_types.Gt):
            low, exclude_low = bound.gt, True
        elif isinstance(bound, annotated_types.Ge):
            low = bound.ge
        elif isinstance(bound, annotated_types.Lt):
            high, exclude_high = bound.lt, True
        elif isinstance(bound, annotated_types.Le):
            high = bound.le
    if kind is int:
        low = None if low is None else int(low) + int(exclude_low)
        high = None if high is None else int(high) - int(exclude_high)
        return st.integers(min_value=low if low is not None else -(10**6), max_value=high)
    return st.floats(
        min_value=low,
        max_value=high if high is not None else 1e6,
        exclude_min=exclude_low,
        exclude_max=exclude_high,
        allow_nan=False,
        allow_infinity=False,
    )


def _valid(annotation: Any, metadata: list[Any]) -> st.SearchStrategy[Any] | None:
    """A strategy of values the field accepts, or None for shapes this test leaves out."""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return st.sampled_from(typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        options = [_valid(arg, metadata) for arg in typing.get_args(annotation)]
        if any(option is None for option in options):
            return None
        return st.one_of(*options)
    if annotation is type(None):
        return st.none()
    if annotation is bool:
        return st.booleans()
    if annotation in (int, float):
        return _number(annotation, metadata)
    if annotation is str:
        return long_text
    if annotation is Path:
        return st.text(st.characters(codec="utf-8", categories=("L", "N")), min_size=1, max_size=12)
    return None  # lists, dicts of ranges: covered by the random-tree test only


# Bounded by a validator function rather than by Field(gt=...): tested in test_config.py.
CHECKED_BY_VALIDATOR = {"classification.threshold", "training.fsdp"}
VALID = {
    key: strategy
    for key in KEYS
    if key not in CHECKED_BY_VALIDATOR
    and (strategy := _valid(LEAVES[key].annotation, LEAVES[key].metadata)) is not None
}
valid_overrides = st.dictionaries(st.sampled_from(sorted(VALID)), st.none(), max_size=8).flatmap(
    lambda chosen: st.fixed_dictionaries({key: VALID[key] for key in chosen})
)

yaml_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=6,
)
keys = st.one_of(st.sampled_from(KEYS), text, st.sampled_from([k.rsplit(".", 1)[0] for k in KEYS]))


def _tree(values: dict[str, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for key, value in values.items():
        node = tree
        *sections, name = key.split(".")
        for section in sections:
            node = node.setdefault(section, {})
        node[name] = value
    return tree


def _config_or_user_error(make: Any) -> RunConfig | None:
    try:
        config = make()
    except UserError as error:
        assert "\n" not in str(error)
        assert len(str(error)) < 2000
        return None
    assert isinstance(config, RunConfig)
    return config


@PROFILE
@given(st.dictionaries(keys, yaml_values, max_size=6))
def test_any_tree_gives_a_config_or_a_user_error(values: dict[str, Any]) -> None:
    raw: dict[Any, Any] = {}
    for key, value in values.items():
        node = raw
        *sections, name = key.split(".")
        for section in sections:
            child = node.get(section)
            node = child if isinstance(child, dict) else node.setdefault(section, {})
            if not isinstance(node, dict):
                break
        else:
            node[name] = value
    _config_or_user_error(lambda: build_config(raw))


override_strings = st.lists(
    st.one_of(
        st.builds(lambda k, v: f"{k}={v}", keys, text),
        st.builds(lambda k, v: f"{k}={json.dumps(v)}", keys, yaml_values),
        text,  # no '=' at all, or several
    ),
    max_size=5,
)


@PROFILE
@given(override_strings)
def test_any_override_strings_give_a_config_or_a_user_error(items: list[str]) -> None:
    _config_or_user_error(lambda: build_config({}, items))


@PROFILE
@given(valid_overrides)
def test_valid_values_are_accepted_and_survive_the_written_yaml(values: dict[str, Any]) -> None:
    config = build_config(_tree(values))
    for key, value in values.items():
        section: Any = config
        for part in key.split("."):
            section = getattr(section, part)
        assert section == value or (isinstance(value, str) and Path(value) == section), key
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.yaml"
        path.write_text(commented_yaml(config) + "\n", encoding="utf-8")
        assert load_config(path) == config


@PROFILE
@given(valid_overrides)
def test_valid_values_as_command_line_overrides(values: dict[str, Any]) -> None:
    # The CLI turns its flags into key=value strings; every value must come back unchanged
    # (JSON, used before, turned characters beyond U+FFFF into two broken ones).
    from tunelab.cli import _flag_overrides

    given = {key: value for key, value in values.items() if value is not None}  # None: no flag
    assert build_config({}, _flag_overrides(given)) == build_config(_tree(given))
