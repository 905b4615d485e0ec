"""Trust registry: trusted issuers per credential type, and federated trust lists."""

from __future__ import annotations

import json
import random
from datetime import timedelta
from typing import Any

import pytest
from support import BATTERY, ISSUER, NOW, STRANGER, credential_v2

from credentials import (
    JCS,
    RDFC,
    ProblemType,
    Verifier,
    VerifyOptions,
    create_presentation,
    issue_credential,
    issue_jwt_credential,
    key_from_seed,
    sign_presentation,
)
from credentials.status_list import (
    REVOCATION,
    StatusChecker,
    StatusList,
    attach_status,
    issue_status_list_credential,
)
from credentials.trust import (
    ANY_TYPE,
    LOCAL_SOURCE,
    TRUST_LIST_TYPE,
    TrustCode,
    TrustListRejected,
    TrustRegistry,
    check_presentation_trust,
    trust_list_credential,
)

AUTHORITY = key_from_seed(bytes([6] * 32))   # the data-space authority
CERTIFIER = key_from_seed(bytes([7] * 32))   # a certification body
HOLDER = key_from_seed(bytes([4] * 32))
RECYCLER = key_from_seed(bytes([8] * 32)).controller
DISMANTLER = "DismantlerCredential"
MEMBERSHIP = "MembershipCredential"
MANUFACTURING = "BatteryManufacturingCredential"
LIST_ID = "https://authority.example/trust-lists/recyclers"
VC = "VerifiableCredential"


def signed_list(
    grants: dict[str, list[str]],
    *,
    key: Any = AUTHORITY,
    list_id: str = LIST_ID,
    valid_from: Any = NOW,
    days: int = 30,
    suite: str = RDFC,
    status: dict[str, Any] | None = None,
) -> dict[str, Any] | str:
    unsigned = trust_list_credential(list_id, grants, valid_from=valid_from,
                                     valid_until=valid_from + timedelta(days=days))
    if status is not None:
        unsigned = attach_status(unsigned, status)
    if suite == "jwt":
        return issue_jwt_credential(unsigned, key, now=valid_from)
    return json.loads(json.dumps(issue_credential(unsigned, key, suite=suite, now=valid_from)))


def registry_with_authority(scope: tuple[str, ...] = (DISMANTLER,)) -> TrustRegistry:
    registry = TrustRegistry()
    registry.trust_authority(AUTHORITY.controller, scope)
    return registry


async def rejected(registry: TrustRegistry, credential: Any, **kwargs: Any) -> TrustListRejected:
    before = registry.to_json()
    with pytest.raises(TrustListRejected) as caught:
        await registry.import_trust_list(credential, kwargs.pop("verifier", Verifier()),
                                         now=kwargs.pop("now", NOW), **kwargs)
    assert registry.to_json() == before  # nothing of a refused list is merged
    assert caught.value.problem.type == ProblemType.UNTRUSTED_ISSUER
    return caught.value


# --- local entries ----------------------------------------------------------------------------


def test_a_trusted_issuer_is_trusted_for_its_type_only() -> None:
    registry = TrustRegistry()
    registry.trust(DISMANTLER, CERTIFIER.controller)
    decision = registry.is_trusted([VC, DISMANTLER], CERTIFIER.controller)
    assert decision.trusted and decision.code == TrustCode.TRUSTED
    assert decision.sources == (LOCAL_SOURCE,)
    other = registry.is_trusted([VC, MEMBERSHIP], CERTIFIER.controller)
    assert not other.trusted
    assert MEMBERSHIP in other.reason and CERTIFIER.controller in other.reason


def test_an_untrusted_issuer_is_refused_with_a_reason() -> None:
    registry = TrustRegistry()
    registry.trust(DISMANTLER, CERTIFIER.controller)
    decision = registry.is_trusted([VC, DISMANTLER], STRANGER.controller)
    assert not decision.trusted
    assert decision.code == TrustCode.UNTRUSTED_ISSUER
    assert decision.reason == f"{STRANGER.controller} is not trusted to issue {DISMANTLER}"
    problem = decision.problem()
    assert problem is not None and problem.type == ProblemType.UNTRUSTED_ISSUER
    assert json.loads(json.dumps(decision.to_json()))["trusted"] is False


def test_every_specific_type_must_be_trusted() -> None:
    registry = TrustRegistry()
    registry.trust(DISMANTLER, CERTIFIER.controller)
    decision = registry.is_trusted([VC, DISMANTLER, MEMBERSHIP], CERTIFIER.controller)
    assert not decision.trusted and MEMBERSHIP in decision.reason
    registry.trust(MEMBERSHIP, CERTIFIER.controller)
    assert registry.is_trusted([VC, DISMANTLER, MEMBERSHIP], CERTIFIER.controller).trusted


def test_a_bare_verifiable_credential_has_nothing_to_trust_for() -> None:
    registry = TrustRegistry()
    registry.trust(DISMANTLER, CERTIFIER.controller)
    decision = registry.is_trusted([VC], CERTIFIER.controller)
    assert not decision.trusted and decision.code == TrustCode.NO_SPECIFIC_TYPE
    assert not registry.is_trusted([VC, DISMANTLER], None).trusted


def test_the_wildcard_is_explicit_and_does_not_cover_trust_lists() -> None:
    registry = TrustRegistry()
    with pytest.raises(ValueError, match="trust_any_type"):
        registry.trust(ANY_TYPE, CERTIFIER.controller)
    with pytest.raises(ValueError):
        registry.trust(TRUST_LIST_TYPE, CERTIFIER.controller)
    with pytest.raises(ValueError):
        registry.trust(VC, CERTIFIER.controller)
    registry.trust_any_type(AUTHORITY.controller)
    assert registry.is_trusted([VC, MEMBERSHIP], AUTHORITY.controller).trusted
    assert registry.is_trusted([VC], AUTHORITY.controller).trusted
    assert not registry.is_trusted([VC, TRUST_LIST_TYPE], AUTHORITY.controller).trusted
    assert registry.authority_scope(AUTHORITY.controller) is None
    assert registry.distrust(ANY_TYPE, AUTHORITY.controller)
    assert not registry.is_trusted([VC, MEMBERSHIP], AUTHORITY.controller).trusted


def test_authority_scopes_are_specific() -> None:
    registry = TrustRegistry()
    for scope in ([], [TRUST_LIST_TYPE], [VC]):
        with pytest.raises(ValueError):
            registry.trust_authority(AUTHORITY.controller, scope)


def test_registry_round_trips_through_json() -> None:
    registry = TrustRegistry()
    registry.trust(DISMANTLER, CERTIFIER.controller)
    registry.trust_any_type(ISSUER.controller)
    registry.trust_authority(AUTHORITY.controller, [DISMANTLER, MEMBERSHIP])
    restored = TrustRegistry.from_json(json.loads(json.dumps(registry.to_json())))
    assert restored.to_json() == registry.to_json()
    assert restored.authority_scope(AUTHORITY.controller) == {DISMANTLER, MEMBERSHIP}
    assert restored.is_trusted([VC, DISMANTLER], CERTIFIER.controller).trusted


# --- federated trust lists --------------------------------------------------------------------


@pytest.mark.parametrize("suite", [RDFC, JCS, "jwt"])
async def test_a_list_from_a_trusted_authority_is_merged_with_its_source(suite: str) -> None:
    registry = registry_with_authority()
    record = await registry.import_trust_list(
        signed_list({DISMANTLER: [RECYCLER, CERTIFIER.controller]}, suite=suite), Verifier(),
        now=NOW)
    assert record.source == LIST_ID and record.authority == AUTHORITY.controller
    decision = registry.is_trusted([VC, DISMANTLER], RECYCLER, now=NOW)
    assert decision.trusted and decision.sources == (LIST_ID,)
    assert {(e.credential_type, e.issuer) for e in registry.entries(LIST_ID)} == {
        (DISMANTLER, RECYCLER), (DISMANTLER, CERTIFIER.controller)}
    assert [s.source for s in registry.sources()] == [LIST_ID]
    assert registry.remove_source(LIST_ID) == 2
    assert not registry.is_trusted([VC, DISMANTLER], RECYCLER, now=NOW).trusted
    assert registry.entries(LIST_ID) == [] and registry.sources() == []


async def test_a_list_from_an_untrusted_authority_is_refused() -> None:
    registry = registry_with_authority()
    error = await rejected(registry, signed_list({DISMANTLER: [RECYCLER]}, key=STRANGER))
    assert "not trusted as an authority" in str(error)
    # Being trusted for ordinary credentials does not make an issuer an authority either.
    registry.trust_any_type(STRANGER.controller)
    await rejected(registry, signed_list({DISMANTLER: [RECYCLER]}, key=STRANGER))


@pytest.mark.parametrize("grants", [
    {MEMBERSHIP: [RECYCLER]},                                  # a type outside the scope
    {DISMANTLER: [RECYCLER], MEMBERSHIP: [RECYCLER]},          # one bad entry spoils the list
    {ANY_TYPE: [RECYCLER]},                                    # a wildcard
    {TRUST_LIST_TYPE: [RECYCLER]},                             # a sub-authority
])
async def test_a_list_escaping_its_scope_is_refused(grants: dict[str, list[str]]) -> None:
    registry = registry_with_authority()
    error = await rejected(registry, signed_list(grants))
    assert "outside" in str(error)
    assert error.reasons and all(AUTHORITY.controller in r for r in error.reasons)
    assert not registry.is_trusted([VC, MEMBERSHIP], RECYCLER, now=NOW).trusted


async def test_an_any_type_scope_still_refuses_wildcards_and_authorities() -> None:
    registry = registry_with_authority((ANY_TYPE,))
    await registry.import_trust_list(signed_list({MEMBERSHIP: [RECYCLER]}), Verifier(), now=NOW)
    assert registry.is_trusted([VC, MEMBERSHIP], RECYCLER, now=NOW).trusted
    await rejected(registry, signed_list({ANY_TYPE: [RECYCLER]}, list_id="urn:uuid:2"))
    await rejected(registry, signed_list({TRUST_LIST_TYPE: [RECYCLER]}, list_id="urn:uuid:3"))


async def test_an_expired_list_is_refused_and_imported_entries_expire() -> None:
    registry = registry_with_authority()
    await rejected(registry, signed_list({DISMANTLER: [RECYCLER]}), now=NOW + timedelta(days=31))
    await registry.import_trust_list(signed_list({DISMANTLER: [RECYCLER]}), Verifier(), now=NOW)
    assert registry.is_trusted([VC, DISMANTLER], RECYCLER, now=NOW + timedelta(days=29)).trusted
    assert not registry.is_trusted([VC, DISMANTLER], RECYCLER,
                                   now=NOW + timedelta(days=30)).trusted


async def test_a_tampered_list_is_refused() -> None:
    registry = registry_with_authority((DISMANTLER, MEMBERSHIP))
    credential = signed_list({DISMANTLER: [RECYCLER]})
    assert isinstance(credential, dict)
    credential["credentialSubject"]["trustEntry"][0]["credentialType"] = MEMBERSHIP
    error = await rejected(registry, credential)
    assert error.verification is not None
    assert [p.type for p in error.verification.problems] == [ProblemType.BAD_SIGNATURE]


async def test_a_list_without_validity_period_or_id_is_refused() -> None:
    registry = registry_with_authority()
    unsigned = trust_list_credential(LIST_ID, {DISMANTLER: [RECYCLER]}, valid_from=NOW,
                                     valid_until=NOW + timedelta(days=1))
    del unsigned["validUntil"]
    await rejected(registry, issue_credential(unsigned, AUTHORITY, now=NOW))
    unsigned = trust_list_credential(LIST_ID, {DISMANTLER: [RECYCLER]}, valid_from=NOW,
                                     valid_until=NOW + timedelta(days=1))
    del unsigned["id"]
    await rejected(registry, issue_credential(unsigned, AUTHORITY, now=NOW))


async def test_a_newer_version_replaces_and_an_older_one_is_refused() -> None:
    registry = registry_with_authority()
    await registry.import_trust_list(signed_list({DISMANTLER: [RECYCLER]}), Verifier(), now=NOW)
    later = NOW + timedelta(days=1)
    await registry.import_trust_list(
        signed_list({DISMANTLER: [CERTIFIER.controller]}, valid_from=later), Verifier(),
        now=later)
    assert not registry.is_trusted([VC, DISMANTLER], RECYCLER, now=later).trusted
    assert registry.is_trusted([VC, DISMANTLER], CERTIFIER.controller, now=later).trusted
    error = await rejected(registry, signed_list({DISMANTLER: [RECYCLER]}), now=later)
    assert "rollback" in str(error)


async def test_another_authority_cannot_take_over_a_source() -> None:
    registry = registry_with_authority()
    registry.trust_authority(CERTIFIER.controller, [DISMANTLER])
    await registry.import_trust_list(signed_list({DISMANTLER: [RECYCLER]}), Verifier(), now=NOW)
    error = await rejected(registry, signed_list({DISMANTLER: [STRANGER.controller]},
                                                 key=CERTIFIER, valid_from=NOW))
    assert "imported from" in str(error)


async def test_narrowing_an_authority_withdraws_its_imported_entries() -> None:
    registry = registry_with_authority((DISMANTLER, MEMBERSHIP))
    await registry.import_trust_list(
        signed_list({DISMANTLER: [RECYCLER], MEMBERSHIP: [RECYCLER]}), Verifier(), now=NOW)
    registry.trust_authority(AUTHORITY.controller, [MEMBERSHIP])
    assert not registry.is_trusted([VC, DISMANTLER], RECYCLER, now=NOW).trusted
    assert registry.is_trusted([VC, MEMBERSHIP], RECYCLER, now=NOW).trusted
    registry.distrust(TRUST_LIST_TYPE, AUTHORITY.controller)
    assert not registry.is_trusted([VC, MEMBERSHIP], RECYCLER, now=NOW).trusted


async def test_imported_state_round_trips_and_hand_edits_are_refused() -> None:
    registry = registry_with_authority()
    await registry.import_trust_list(signed_list({DISMANTLER: [RECYCLER]}), Verifier(), now=NOW)
    state = json.loads(json.dumps(registry.to_json()))
    restored = TrustRegistry.from_json(state)
    assert restored.to_json() == state
    assert restored.is_trusted([VC, DISMANTLER], RECYCLER, now=NOW).sources == (LIST_ID,)
    state["entries"].append({"credentialType": MEMBERSHIP, "issuer": RECYCLER,
                             "source": "https://nowhere.example/list"})
    with pytest.raises(ValueError, match="unknown source"):
        TrustRegistry.from_json(state)


# --- revoked trust lists ----------------------------------------------------------------------


class OneList:
    """Serves one status list credential, published by AUTHORITY."""

    def __init__(self, status_list: StatusList) -> None:
        self.status_list = status_list

    async def __call__(self, url: str) -> dict[str, Any] | str:
        assert url == self.status_list.url
        return issue_status_list_credential(self.status_list, AUTHORITY, now=NOW)


async def test_a_revoked_list_is_refused_and_rechecks_remove_it() -> None:
    status_list = StatusList("https://authority.example/status/1", REVOCATION,
                             rng=random.Random(5))
    index = status_list.allocate()
    credential = signed_list({DISMANTLER: [RECYCLER]}, status=status_list.entry(index))
    registry = registry_with_authority()
    # Without a status checker nobody can say it was not revoked: refused by default.
    error = await rejected(registry, credential)
    assert "not checked" in str(error)
    checking = Verifier(status_checker=StatusChecker(OneList(status_list), max_age_s=0))
    await registry.import_trust_list(credential, checking, now=NOW)
    assert registry.is_trusted([VC, DISMANTLER], RECYCLER, now=NOW).trusted
    status_list.revoke(index)
    removed = await registry.recheck_sources(checking, now=NOW)
    assert list(removed) == [LIST_ID] and "revoked" in removed[LIST_ID]
    assert not registry.is_trusted([VC, DISMANTLER], RECYCLER, now=NOW).trusted
    error = await rejected(registry, credential, verifier=checking)
    assert [p.type for p in error.verification.problems] == [ProblemType.REVOKED]


# --- presentations ----------------------------------------------------------------------------


async def test_presentation_trust_per_credential() -> None:
    registry = TrustRegistry()
    registry.trust(MANUFACTURING, ISSUER.controller)
    trusted = issue_credential(credential_v2(), ISSUER, now=NOW)
    untrusted_unsigned = {**credential_v2(), "issuer": BATTERY.controller}
    untrusted = issue_jwt_credential(untrusted_unsigned, BATTERY, now=NOW)
    forged = json.loads(json.dumps(issue_credential(credential_v2(), ISSUER, now=NOW)))
    forged["credentialSubject"]["batteryModel"] = "forged"
    vp = create_presentation([trusted, untrusted, forged], HOLDER.controller)
    signed = sign_presentation(vp, HOLDER, challenge="c-1", domain="d.example", now=NOW)
    result = await Verifier().verify_presentation(
        signed, VerifyOptions(challenge="c-1", domain="d.example", now=NOW))
    report = check_presentation_trust(result, registry, now=NOW)
    assert [(r.index, r.trusted) for r in report] == [(0, True), (1, False), (2, False)]
    assert report[0].credential_types == (VC, MANUFACTURING)
    assert report[1].decision.code == TrustCode.UNTRUSTED_ISSUER
    assert BATTERY.controller in report[1].decision.reason
    assert report[2].decision.code == TrustCode.NOT_VERIFIED
    assert "bad-signature" in report[2].decision.reason
    json.dumps([r.to_json() for r in report])
    single = check_presentation_trust(result.credentials[0], registry, now=NOW)
    assert [r.trusted for r in single] == [True]
