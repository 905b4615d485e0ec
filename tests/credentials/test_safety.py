"""Safety rules of issuing and verifying: one failing input per rule, in every format.

Each rule guards against something pyld (or plain JSON) would let through silently: a term
dropped during expansion, an IRI resolved against pyld's made-up base, a context fetched from
anywhere, a number another implementation reads differently, a field changed after signing.
Issuing must refuse with the typed exception; verifying must report the typed problem and
never raise.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from support import (
    FORMATS,
    ISSUER,
    JWT,
    LDP_SUITES,
    NOW,
    STRANGER,
    b64url_decode,
    b64url_encode,
    credential_v2,
    problem_type_set,
    verify,
)

import credentials.jsonld as jsonld_module
from credentials import (
    RDFC,
    ProblemType,
    issue_credential,
    issue_jwt_credential,
)
from credentials.errors import (
    CredentialsError,
    DisallowedContext,
    IssuerMismatch,
    MalformedDocument,
    NumberOutOfRange,
    RelativeIri,
    UndefinedTerm,
)
from credentials.jose import sign_jwt_credential

EVIL_CONTEXT = "https://evil.example/ctx"
#: Explicit inline terms for the number tests (no @vocab, so nothing else is let through).
NUMBER_CONTEXT = {"ex": "https://example.org/vocab#", "reading": "ex:reading"}


def issue(fmt: str, unsigned: dict[str, Any]) -> dict[str, Any] | str:
    if fmt == JWT:
        return issue_jwt_credential(unsigned, ISSUER, now=NOW)
    return issue_credential(unsigned, ISSUER, suite=fmt, now=NOW)


def received(fmt: str, unsigned: dict[str, Any] | None = None) -> dict[str, Any] | str:
    """A correctly issued credential as a peer would receive it (a fresh JSON copy)."""
    issued = issue(fmt, unsigned or credential_v2())
    return issued if isinstance(issued, str) else json.loads(json.dumps(issued))


def signed_jwt_unchecked(document: dict[str, Any]) -> str:
    """A JWT a careless (or hostile) issuer produced without our issue-time checks."""
    return sign_jwt_credential(document, ISSUER)


def tamper_jwt(token: str, change: Any) -> str:
    """The token with its payload edited by ``change`` and the original signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(b64url_decode(payload))
    change(claims)
    return ".".join((header, b64url_encode(json.dumps(claims).encode()), signature))


def refuse(fmt: str, unsigned: dict[str, Any], error: type[CredentialsError]) -> None:
    with pytest.raises(error) as caught:
        issue(fmt, unsigned)
    assert caught.value.problem.type == error.problem_type


@pytest.mark.parametrize("fmt", FORMATS)
async def test_sample_credential_issues_and_verifies(fmt: str) -> None:
    """Baseline: the failures below are caused by the edits, not by the sample."""
    result = await verify(received(fmt))
    assert result.verified, result.problems


# --- undefined terms (pyld would drop them silently) ----------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_undefined_term_in_subject_is_refused_at_issue(fmt: str) -> None:
    unsigned = credential_v2()
    unsigned["credentialSubject"]["stateOfHealthBoost"] = "97"
    refuse(fmt, unsigned, UndefinedTerm)


@pytest.mark.parametrize("suite", LDP_SUITES)
async def test_undefined_term_injected_after_signing_is_reported(suite: str) -> None:
    vc = received(suite)
    assert isinstance(vc, dict)
    vc["credentialSubject"]["stateOfHealthBoost"] = "97"
    result = await verify(vc)
    assert not result.verified
    # With RDFC the dropped term would leave the signature valid: the term check is what
    # catches it. With JCS the JSON changed, so a bad signature may be reported as well.
    assert ProblemType.UNDEFINED_TERM in problem_type_set(result)
    if suite == RDFC:
        assert problem_type_set(result) == {ProblemType.UNDEFINED_TERM}


async def test_undefined_term_in_a_signed_jwt_is_reported() -> None:
    unsigned = credential_v2()
    unsigned["credentialSubject"]["stateOfHealthBoost"] = "97"
    result = await verify(signed_jwt_unchecked(unsigned))
    assert ProblemType.UNDEFINED_TERM in problem_type_set(result)


@pytest.mark.parametrize("fmt", FORMATS)
def test_undefined_top_level_term_is_refused_at_issue(fmt: str) -> None:
    unsigned = credential_v2()
    unsigned["internalNote"] = "do not ship"
    refuse(fmt, unsigned, UndefinedTerm)


# --- relative IRIs (pyld would resolve them against http://example.org/base/) --------------


def _undefined_type(doc: dict[str, Any]) -> None:
    doc["type"] = ["VerifiableCredential", "MadeUpType"]


def _relative_id(doc: dict[str, Any]) -> None:
    doc["id"] = "credentials/1"


RELATIVE_EDITS = pytest.mark.parametrize(
    "edit", [_undefined_type, _relative_id], ids=["undefined-type", "relative-id"]
)


@RELATIVE_EDITS
@pytest.mark.parametrize("fmt", FORMATS)
def test_relative_iri_is_refused_at_issue(fmt: str, edit: Any) -> None:
    unsigned = credential_v2()
    edit(unsigned)
    refuse(fmt, unsigned, RelativeIri)


@RELATIVE_EDITS
@pytest.mark.parametrize("suite", LDP_SUITES)
async def test_relative_iri_injected_after_signing_is_reported(suite: str, edit: Any) -> None:
    vc = received(suite)
    assert isinstance(vc, dict)
    edit(vc)
    result = await verify(vc)
    assert ProblemType.RELATIVE_IRI in problem_type_set(result)


@RELATIVE_EDITS
async def test_relative_iri_in_a_signed_jwt_is_reported(edit: Any) -> None:
    unsigned = credential_v2()
    edit(unsigned)
    result = await verify(signed_jwt_unchecked(unsigned))
    assert ProblemType.RELATIVE_IRI in problem_type_set(result)


@pytest.mark.parametrize("first", ["Battery", "Whatever"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_vocab_value_verdict_does_not_depend_on_earlier_documents(fmt: str, first: str) -> None:
    """``batteryStatus`` is ``@type: @vocab``: a defined term ("Battery") expands to an
    absolute IRI, an undefined word ("Whatever") to a relative one. The JSON paths cache the
    term check per document *shape*; both words have the same shape, so whichever was
    checked first must not decide the verdict for the other.
    """
    jsonld_module._shape_verdicts.clear()
    verdicts: dict[str, type[CredentialsError] | None] = {}
    for word in (first, "Whatever" if first == "Battery" else "Battery"):
        unsigned = credential_v2()
        unsigned["credentialSubject"]["batteryStatus"] = word
        try:
            issue(fmt, unsigned)
            verdicts[word] = None
        except CredentialsError as exc:
            verdicts[word] = type(exc)
    assert verdicts == {"Battery": None, "Whatever": RelativeIri}


# --- contexts that are not bundled -----------------------------------------------------------


def _remote_context(doc: dict[str, Any]) -> None:
    doc["@context"] = [*doc["@context"], EVIL_CONTEXT]


def _type_scoped_context(doc: dict[str, Any]) -> None:
    doc["@context"] = [
        *doc["@context"],
        {"Pack": {"@id": "https://example.org/vocab#Pack", "@context": EVIL_CONTEXT}},
    ]
    doc["credentialSubject"]["type"] = ["Battery", "Pack"]


CONTEXT_EDITS = pytest.mark.parametrize(
    "edit", [_remote_context, _type_scoped_context], ids=["remote", "type-scoped"]
)


@CONTEXT_EDITS
@pytest.mark.parametrize("fmt", FORMATS)
def test_unbundled_context_is_refused_at_issue(fmt: str, edit: Any) -> None:
    unsigned = credential_v2()
    edit(unsigned)
    refuse(fmt, unsigned, DisallowedContext)


@CONTEXT_EDITS
@pytest.mark.parametrize("suite", LDP_SUITES)
async def test_unbundled_context_added_after_signing_is_reported(suite: str, edit: Any) -> None:
    vc = received(suite)
    assert isinstance(vc, dict)
    edit(vc)
    result = await verify(vc)
    assert not result.verified
    assert ProblemType.CONTEXT_NOT_ALLOWED in problem_type_set(result)


@CONTEXT_EDITS
async def test_unbundled_context_in_a_signed_jwt_is_reported(edit: Any) -> None:
    unsigned = credential_v2()
    edit(unsigned)
    result = await verify(signed_jwt_unchecked(unsigned))
    assert ProblemType.CONTEXT_NOT_ALLOWED in problem_type_set(result)


# --- numbers outside I-JSON ------------------------------------------------------------------

BAD_NUMBERS = pytest.mark.parametrize(
    "number",
    [2**53, 2**60, -(2**53), 1.7976931348623157e308, float("nan"), float("inf"),
     float("-inf"), 0.30000000000000004],
    ids=["2^53", "2^60", "-2^53", "max-double", "nan", "inf", "-inf", "17-digits"],
)


@BAD_NUMBERS
@pytest.mark.parametrize("fmt", FORMATS)
def test_number_outside_ijson_is_refused_at_issue(fmt: str, number: float) -> None:
    unsigned = credential_v2()
    unsigned["@context"] = [*unsigned["@context"], NUMBER_CONTEXT]
    unsigned["credentialSubject"]["reading"] = number
    refuse(fmt, unsigned, NumberOutOfRange)


@pytest.mark.parametrize("number", [2**53 - 1, -(2**53 - 1), 0.1, 3.65, 1e300])
@pytest.mark.parametrize("fmt", FORMATS)
async def test_numbers_inside_ijson_are_accepted(fmt: str, number: float) -> None:
    unsigned = credential_v2()
    unsigned["@context"] = [*unsigned["@context"], NUMBER_CONTEXT]
    unsigned["credentialSubject"]["reading"] = number
    result = await verify(received(fmt, unsigned))
    assert result.verified, result.problems


@pytest.mark.parametrize("suite", LDP_SUITES)
async def test_received_ldp_credential_with_huge_integer_is_reported(suite: str) -> None:
    vc = received(suite)
    assert isinstance(vc, dict)
    vc["credentialSubject"]["cellCount"] = 2**60
    result = await verify(vc)
    assert ProblemType.NUMBER_OUT_OF_RANGE in problem_type_set(result)


async def test_received_jwt_with_huge_integer_is_reported() -> None:
    unsigned = credential_v2()
    unsigned["credentialSubject"]["cellCount"] = 2**60
    result = await verify(signed_jwt_unchecked(unsigned))
    assert ProblemType.NUMBER_OUT_OF_RANGE in problem_type_set(result)


# --- fields changed after signing ------------------------------------------------------------


def _change_energy(doc: dict[str, Any]) -> None:
    doc["credentialSubject"]["ratedEnergyKWh"] = "99.9"


def _change_issuer(doc: dict[str, Any]) -> None:
    doc["issuer"] = STRANGER.controller


@pytest.mark.parametrize("fmt", FORMATS)
async def test_tampered_field_is_a_bad_signature(fmt: str) -> None:
    vc = received(fmt)
    if isinstance(vc, str):
        vc = tamper_jwt(vc, _change_energy)
    else:
        _change_energy(vc)
    result = await verify(vc)
    assert problem_type_set(result) == {ProblemType.BAD_SIGNATURE}


@pytest.mark.parametrize("fmt", FORMATS)
async def test_changed_issuer_is_refused(fmt: str) -> None:
    vc = received(fmt)
    if isinstance(vc, str):
        vc = tamper_jwt(vc, _change_issuer)
    else:
        _change_issuer(vc)
    result = await verify(vc)
    assert not result.verified
    assert problem_type_set(result) <= {ProblemType.BAD_SIGNATURE, ProblemType.ISSUER_MISMATCH}
    assert problem_type_set(result)


# --- issuer binding and existing proofs -----------------------------------------------------


@pytest.mark.parametrize("issuer", ["string", "object"])
@pytest.mark.parametrize("fmt", FORMATS)
def test_issuer_that_does_not_control_the_key_is_refused(fmt: str, issuer: str) -> None:
    unsigned = credential_v2()
    unsigned["issuer"] = (STRANGER.controller if issuer == "string"
                          else {"id": STRANGER.controller, "name": "Someone Else"})
    refuse(fmt, unsigned, IssuerMismatch)


@pytest.mark.parametrize("fmt", FORMATS)
def test_credential_that_already_has_a_proof_is_refused(fmt: str) -> None:
    already = received(RDFC)
    assert isinstance(already, dict)
    refuse(fmt, copy.deepcopy(already), MalformedDocument)
