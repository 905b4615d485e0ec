"""The fast schema gate (jsonschema-rs) and the reference validator (jsonschema) agree.

``schema_errors`` trusts the fast validator's "valid" and asks the reference for the errors
otherwise, so the two must never disagree on validity: checked on the official examples and
on many mutations of them (keys dropped, values replaced by other JSON types).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from connector.dsp import schemas
from tests.connector.test_dsp_messages import EXAMPLES, kind_of, load, needs_shared

JSON_VALUES = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8),
                        st.lists(st.integers(), max_size=2),
                        st.dictionaries(st.text(max_size=4), st.integers(), max_size=2))


def agree(document: Any, kind: str) -> bool:
    reference = not list(schemas.validator(kind).iter_errors(document))
    return schemas.fast_validator(kind).is_valid(document) == reference


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, value in node.items():
            found += paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += paths(value, (*prefix, index))
    return found


def mutated(document: Any, path: tuple[Any, ...], value: Any, drop: bool) -> Any:
    copied = copy.deepcopy(document)
    parent = copied
    for step in path[:-1]:
        parent = parent[step]
    if drop and isinstance(parent, dict):
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return copied


@needs_shared
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_both_validators_accept_the_official_examples(path: Any) -> None:
    document = load(path)
    kind = kind_of(document)
    assert schemas.fast_validator(kind).is_valid(document)
    assert schemas.schema_errors(document, kind) == []


@needs_shared
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_both_validators_agree_on_mutated_examples(data: st.DataObject) -> None:
    document = load(data.draw(st.sampled_from(EXAMPLES)))
    kind = kind_of(document)
    path = data.draw(st.sampled_from(paths(document)))
    changed = mutated(document, path, data.draw(JSON_VALUES), data.draw(st.booleans()))
    assert agree(changed, kind), (kind, path, changed)


def test_the_fast_validator_never_reaches_beyond_the_bundled_schemas() -> None:
    with pytest.raises(ValueError, match="not a bundled DSP schema"):
        schemas._bundled("https://example.com/evil-schema.json")
    with pytest.raises(ValueError, match="not a bundled DSP schema"):
        schemas._bundled(schemas.BASE_URI + "catalog/no-such-schema.json")
