"""Whatever arrives, the verifier answers with a result, never an exception."""

from __future__ import annotations

import asyncio
import copy
import json
import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connector.samples import manufacturing_credential
from credentials import (
    JCS,
    RDFC,
    issue_credential,
    issue_jwt_credential,
    key_from_seed,
    verify_credential,
)
from credentials.errors import ProblemType
from credentials.jsonld import canonize_rdfc

KEY = key_from_seed(bytes(range(32)))
BATTERY = key_from_seed(bytes(range(1, 33))).controller
BASE = manufacturing_credential(BATTERY, KEY.controller, rng=random.Random(7))
SIGNED = {
    RDFC: issue_credential(BASE, KEY, suite=RDFC),
    JCS: issue_credential(BASE, KEY, suite=JCS),
}
JWT = issue_jwt_credential(BASE, KEY)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for k, v in node.items():
            found += _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            found += _paths(v, (*prefix, i))
    return found


def _replace(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    target = doc
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return doc


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(suite=st.sampled_from([RDFC, JCS]), data=st.data(), value=json_values)
def test_any_single_replacement_gives_a_result(suite: str, data: st.DataObject, value: Any) -> None:
    signed = copy.deepcopy(SIGNED[suite])
    path = data.draw(st.sampled_from(_paths(signed)))
    mutated = _replace(signed, path, value)
    result = asyncio.run(verify_credential(mutated))
    json.dumps(result.to_json())
    if result.verified:
        # Only a change that leaves what was signed intact may verify: for JCS that is the
        # JSON itself, for RDFC the canonical RDF (["Battery"] and "Battery" are one triple).
        assert _signed_form(suite, mutated) == _signed_form(suite, SIGNED[suite])


def _signed_form(suite: str, document: Any) -> Any:
    unsecured = {k: v for k, v in document.items() if k != "proof"}
    if suite == JCS:
        return (unsecured, document["proof"])
    return (canonize_rdfc(unsecured), document["proof"])


@settings(max_examples=100, deadline=None)
@given(noise=st.text(max_size=40), position=st.integers(min_value=0, max_value=len(JWT)))
def test_any_jwt_edit_gives_a_result(noise: str, position: int) -> None:
    token = JWT[:position] + noise + JWT[position:]
    result = asyncio.run(verify_credential(token))
    json.dumps(result.to_json())
    if token.strip() != JWT:  # surrounding whitespace (a file's newline) is not part of it
        assert not result.verified


def test_a_non_canonical_base64url_spelling_of_a_jwt_is_refused() -> None:
    """A 64-byte signature leaves 4 spare bits in its last character: 16 spellings of one
    token would all verify, each with its own passport digest. Only the canonical one may."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    tried = 0
    for position in range(3):
        segments = JWT.split(".")
        last = segments[position][-1]
        twins = [c for c in alphabet if c != last and _decodes_same(segments[position], c)]
        for twin in twins[:3]:
            segments[position] = segments[position][:-1] + twin
            result = asyncio.run(verify_credential(".".join(segments)))
            assert not result.verified
            assert [p.type for p in result.problems] == [ProblemType.MALFORMED]
            tried += 1
    assert tried >= 3  # the signature segment always has spare bits


def _decodes_same(segment: str, last: str) -> bool:
    import base64

    def decode(text: str) -> bytes:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

    return decode(segment) == decode(segment[:-1] + last)


async def test_empty_proof_list_is_not_a_valid_credential() -> None:
    """Found by the fuzz test above: with ``proof: []`` no proof failed, so nothing was wrong."""
    stripped = {**SIGNED[RDFC], "proof": []}
    result = await verify_credential(stripped)
    assert not result.verified
    assert [p.type for p in result.problems] == [ProblemType.MALFORMED]


async def test_previous_proof_of_the_wrong_type_is_malformed() -> None:
    """Reported by the node's VC-API tests: ``previousProof: 5`` raised a TypeError."""
    proof = {**SIGNED[RDFC]["proof"], "previousProof": 5}
    result = await verify_credential({**SIGNED[RDFC], "proof": proof})
    assert ProblemType.MALFORMED in [p.type for p in result.problems]


def test_a_lone_surrogate_is_refused_at_issue_as_malformed() -> None:
    """Reported by the node's VC-API tests: RDFC issuing raised UnicodeEncodeError."""
    from credentials.errors import MalformedDocument

    unsigned = json.loads(json.dumps(BASE))
    unsigned["credentialSubject"]["manufacturerName"] = "Cellforge \ud800"
    with pytest.raises(MalformedDocument):
        issue_credential(unsigned, KEY, suite=RDFC)
