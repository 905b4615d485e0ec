"""The engine's bundled policy contexts and its term resolution."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from odrl_support import CATENAX, SHARED, load, needs_shared

from policies.cx_operands import CX_CREDENTIAL_TYPES
from policies.errors import MalformedPolicy, UnknownContext
from policies.jsonld import (
    CX_2025_9_TERMS,
    CX_LEGACY_TERMS,
    DSP_ODRL_TERMS,
    ODRL_TERMS,
    active_context,
    known_context,
    policy_context_urls,
)
from policies.namespaces import (
    CX_LEGACY_CONTEXT,
    CX_ODRL_CONTEXT,
    CX_POLICY,
    CX_POLICY_CONTEXT,
    CX_POLICY_LEGACY,
    DSP_ODRL_PROFILE,
    EDC,
    ODRL,
    ODRL_CONTEXT,
)


def _terms(document: dict) -> dict[str, str]:
    out = {}
    for term, definition in document["@context"].items():
        if term.startswith("@"):
            continue
        out[term] = definition["@id"] if isinstance(definition, dict) else definition
    return out


@needs_shared
def test_catena_x_2025_09_context_matches_the_reference_file() -> None:
    reference = _terms(load(CATENAX / "policy-2025-9" / "context.jsonld"))
    assert reference["cx-policy"] == CX_POLICY
    assert {t for t, d in reference.items() if d.startswith("cx-policy:")} == set(CX_2025_9_TERMS)
    active = active_context(CX_POLICY_CONTEXT)
    for term in CX_2025_9_TERMS:
        assert active.expand(term) == CX_POLICY + term


@needs_shared
def test_legacy_context_matches_the_reference_file() -> None:
    reference = _terms(load(CATENAX / "credentials" / "context" / "policy.context.json"))
    assert reference["cx-policy"] == CX_POLICY_LEGACY
    assert {t for t, d in reference.items() if d.startswith("cx-policy:")} == set(
        CX_LEGACY_TERMS)
    active = active_context(CX_LEGACY_CONTEXT)
    assert active.expand("Dismantler.allowedBrands") == CX_POLICY_LEGACY + \
        "Dismantler.allowedBrands"


@needs_shared
@pytest.mark.parametrize("path", ["dsp-2025-1/odrl-profile.jsonld",
                                  "catenax/policy-2025-9/odrl.jsonld"])
def test_odrl_profile_matches_the_reference_files(path: str) -> None:
    reference = _terms(load(SHARED / path))
    profile = {t: d for t, d in reference.items() if d.startswith("odrl:")}
    assert set(profile) == set(DSP_ODRL_TERMS)
    assert all(d == f"odrl:{t}" for t, d in profile.items())


@needs_shared
def test_full_odrl_context_terms_match_the_reference_file() -> None:
    reference = _terms(load(SHARED / "dcp-1.0" / "odrl.jsonld"))
    named = {t for t, d in reference.items() if d == f"odrl:{t}"}
    # the copy has typos (neq -> odrl:neg; dataType -> odrl:datatype); ours are right
    assert named | {"neq", "dataType"} == set(ODRL_TERMS)


@needs_shared
def test_credential_type_spellings_match_the_samples() -> None:
    kinds = {load(p)["type"][1] for p in (CATENAX / "credentials" / "samples").glob("*.json")}
    assert kinds == set(CX_CREDENTIAL_TYPES)


def test_bundled_urls_and_vocab_fallback() -> None:
    assert {CX_POLICY_CONTEXT, CX_ODRL_CONTEXT, CX_LEGACY_CONTEXT, DSP_ODRL_PROFILE,
            ODRL_CONTEXT} <= policy_context_urls()
    credentials = active_context("https://www.w3.org/2018/credentials/v1")
    assert credentials.expand("VerifiableCredential") == \
        "https://www.w3.org/2018/credentials#VerifiableCredential"
    assert known_context("https://example.org/nope") is None
    with pytest.raises(UnknownContext) as err:
        active_context(["https://w3id.org/dspace/2025/1/context.jsonld",
                        "https://example.org/nope"])
    assert err.value.path == "@context[1]"


def test_inline_definitions_vocab_null_and_protection() -> None:
    active = active_context({"b": "a:x", "a": "https://example.org/", "@vocab": EDC})
    assert active.expand("b") == "https://example.org/x"  # prefix defined later in the object
    assert active.expand("a:y") == "https://example.org/y"
    assert active.expand("partner") == EDC + "partner"
    assert active.expand("use") == ODRL + "use"  # term definitions beat @vocab
    assert active_context([{"@vocab": EDC}, None]).expand("partner") is None  # null resets
    assert active_context({"use": None}).expand("use") is None
    assert active_context({"x": {"@id": "odrl:count", "@type": "xsd:integer"}}).expand(
        "x") == ODRL + "count"
    with pytest.raises(MalformedPolicy):  # protected CX terms cannot move
        active_context([CX_POLICY_CONTEXT, {"Membership": "https://example.org/Membership"}])
    # a redefinition to the same IRI is allowed
    active_context([CX_POLICY_CONTEXT, {"Membership": {"@id": "cx-policy:Membership"}}])
    with pytest.raises(MalformedPolicy):
        active_context([{"@vocab": 5}])
    with pytest.raises(MalformedPolicy):
        active_context([42])


def test_ids_keep_relative_references_and_expand_compact_iris() -> None:
    active = active_context({"ex": "https://example.org/"})
    assert active.expand_id("ex:asset") == "https://example.org/asset"
    assert active.expand_id("did:web:a.example") == "did:web:a.example"
    assert active.expand_id("asset-1") == "asset-1"
    assert active.expand("did:web:a.example") == "did:web:a.example"
    assert active.expand("_:b0") == "_:b0"


_iris = st.sampled_from([ODRL + "use", ODRL + "eq", ODRL + "dateTime", CX_POLICY + "Membership",
                         CX_POLICY + "NotATerm", CX_POLICY_LEGACY + "Dismantler",
                         "https://w3id.org/battery-passport-connector/policy#participantDid",
                         EDC + "inForceDate", "https://example.org/other#x", "urn:uuid:1"])
_contexts = st.sampled_from([None, [CX_POLICY_CONTEXT], [CX_LEGACY_CONTEXT],
                             [DSP_ODRL_PROFILE, CX_POLICY_CONTEXT], {"@vocab": EDC},
                             [ODRL_CONTEXT, {"x": "https://example.org/other#"}]])


@given(_iris, _contexts)
def test_compact_then_expand_is_the_identity(iri: str, context: object) -> None:
    active = active_context(context)
    assert active.expand(active.compact(iri)) == iri
