"""Auditing passports: a real six-entry passport passes, and each way of breaking it is
reported as its own typed finding on the entry it concerns."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from typing import Any

import pytest
from test_passport_chain import (
    AUDIT_NOW,
    BATTERY,
    CELL_MAKER,
    CONTEXT,
    OEM,
    OTHER_BATTERY,
    PASSPORT_TERMS,
    RECYCLER,
    REPURPOSER,
    SECOND_LIFE,
    STRANGER,
    T0,
    VOCAB,
    lifecycle,
    lifecycle_steps,
    make_entry,
    original_for_repurposing,
    repurposing,
    soh,
    stamp,
    transfer,
)

from credentials import RDFC, ProblemType, Verifier
from credentials.passport.audit import (
    AuditReport,
    FindingType,
    Severity,
    audit,
    finding_type_of_problem,
)
from credentials.passport.chain import (
    CustodyViolation,
    Origin,
    Passport,
    SubjectMismatch,
    UnknownCredentialType,
    credential_digest,
)
from vocab import CREDENTIALS_V2

F = FindingType


def errors(report: AuditReport) -> set[tuple[FindingType, int | None]]:
    """The error findings as (type, storage index) pairs."""
    return {(f.type, f.index) for f in report.errors}


async def check(entries: Any, **kwargs: Any) -> AuditReport:
    """audit at AUDIT_NOW, checking the report's own consistency and that it encodes."""
    kwargs.setdefault("now", AUDIT_NOW)
    report = await audit(entries, **kwargs)
    json.dumps(report.to_json())
    assert report.ok == (not any(f.severity is Severity.ERROR for f in report.findings))
    for finding in report.findings:
        if finding.index is not None and report.digests[finding.index] is not None:
            assert finding.digest == report.digests[finding.index]
    return report


async def test_a_real_passport_passes() -> None:
    passport = lifecycle()
    for given in (passport, list(passport.entries)):
        report = await check(given)
        assert report.ok and report.findings == []
        assert report.order == [0, 1, 2, 3, 4, 5]
        assert report.head == passport.head
        assert report.custodian == RECYCLER.controller
        assert report.battery == BATTERY
        assert report.digests == list(passport.digests)
        assert report.to_json()["ok"] is True


async def test_mixed_formats_including_a_jwt_entry_pass() -> None:
    passport = lifecycle_steps(formats={0: RDFC, 3: "jwt"})
    report = await check(passport)
    assert report.ok, report.findings
    assert report.digests[3] == credential_digest(passport.entries[3])


async def test_an_altered_entry_has_a_bad_signature_and_breaks_the_next_link() -> None:
    entries = list(lifecycle().entries)
    entries[3]["credentialSubject"]["stateOfHealthPct"] = "99.9"
    report = await check(entries)
    assert errors(report) == {(F.BAD_SIGNATURE, 3), (F.BROKEN_LINK, 4), (F.UNREACHABLE, 5)}
    assert report.order == [0, 1, 2, 3]


async def test_a_removed_middle_entry_breaks_the_chain_there() -> None:
    entries = list(lifecycle().entries)
    del entries[2]
    report = await check(entries)
    assert errors(report) == {(F.BROKEN_LINK, 2), (F.UNREACHABLE, 3), (F.UNREACHABLE, 4)}
    assert report.order == [0, 1]


async def test_a_removed_first_entry_leaves_a_chain_that_starts_with_a_broken_link() -> None:
    entries = list(lifecycle().entries)[1:]
    report = await check(entries)
    assert errors(report) == {(F.BROKEN_LINK, 0)}
    assert report.order == [0, 1, 2, 3, 4]


async def test_stored_order_does_not_matter_when_the_links_are_intact() -> None:
    """Decision: the links are the order. A swapped storage order is only a warning."""
    passport = lifecycle()
    entries = list(passport.entries)
    entries[2], entries[3] = entries[3], entries[2]
    report = await check(entries)
    assert report.ok
    assert [(f.type, f.index) for f in report.warnings] == [(F.OUT_OF_ORDER, None)]
    assert report.order == [0, 1, 3, 2, 4, 5]
    assert report.head == passport.head and report.custodian == RECYCLER.controller

    reversed_entries = list(reversed(passport.entries))
    report = await check(reversed_entries)
    assert report.ok and report.order == [5, 4, 3, 2, 1, 0]


async def test_a_fork_is_reported_on_both_branches() -> None:
    passport = lifecycle()
    rival = soh(OEM, previous=passport.digests[2], day=3, pct="80.0")
    report = await check([*passport.entries, rival])
    assert errors(report) == {(F.FORK, 3), (F.FORK, 6)}
    assert report.head is None and report.custodian is None
    assert sorted(report.order) == list(range(7))


async def test_an_entry_by_a_non_custodian_is_refused_and_reported() -> None:
    passport = lifecycle()
    intruder = soh(STRANGER, previous=passport.head, day=9)
    with pytest.raises(CustodyViolation):
        passport.append(intruder)
    report = await check([*passport.entries, intruder])
    assert errors(report) == {(F.CUSTODY_VIOLATION, 6)}

    old_custodian = soh(OEM, previous=passport.head, day=9)
    report = await check([*passport.entries, old_custodian])
    assert errors(report) == {(F.CUSTODY_VIOLATION, 6)}


async def test_custody_does_not_move_with_an_invalid_transfer() -> None:
    """Decision: a transfer that fails verification (here: expired) hands nothing on, so the
    recycler's entry after it is not by the custodian."""
    passport = lifecycle()
    entries = list(passport.entries[:4])
    entries.append(transfer(OEM, RECYCLER, previous=credential_digest(entries[3]), day=4,
                            extra={"validUntil": stamp(T0 + timedelta(days=30))}))
    entries.append(soh(RECYCLER, previous=credential_digest(entries[4]), day=5))
    report = await check(entries)
    assert errors(report) == {(F.EXPIRED, 4), (F.CUSTODY_VIOLATION, 5)}


async def test_a_stranger_cannot_transfer_custody_to_itself() -> None:
    passport = lifecycle()
    grab = transfer(STRANGER, STRANGER, previous=passport.head, day=9)
    after = soh(STRANGER, previous=credential_digest(grab), day=10)
    report = await check([*passport.entries, grab, after])
    assert errors(report) == {(F.CUSTODY_VIOLATION, 6), (F.CUSTODY_VIOLATION, 7)}


async def test_an_entry_about_another_battery() -> None:
    passport = lifecycle()
    foreign = soh(RECYCLER, previous=passport.head, day=9, battery=OTHER_BATTERY)
    with pytest.raises(SubjectMismatch):
        passport.append(foreign)
    report = await check([*passport.entries, foreign])
    assert errors(report) == {(F.SUBJECT_MISMATCH, 6)}


async def test_an_unknown_credential_type() -> None:
    passport = lifecycle()
    context = [CREDENTIALS_V2, {**PASSPORT_TERMS,
                                "WarrantyClaimCredential": VOCAB + "WarrantyClaimCredential"}]
    claim = make_entry("WarrantyClaimCredential", RECYCLER, previous=passport.head, day=9,
                       context=context)
    with pytest.raises(UnknownCredentialType):
        passport.append(claim)
    report = await check([*passport.entries, claim])
    assert errors(report) == {(F.UNKNOWN_TYPE, 6)}

    membership = make_entry("MembershipCredential", RECYCLER, previous=passport.head, day=9,
                            fields={"memberOf": "Catena-X"})
    report = await check([*passport.entries, membership])
    assert errors(report) == {(F.UNKNOWN_TYPE, 6)}


async def test_an_expired_entry_depends_on_now() -> None:
    passport = Passport(BATTERY)
    for entry in list(lifecycle().entries)[:3]:
        passport.append(entry)
    passport.append(soh(OEM, previous=passport.head, day=3,
                        extra={"validUntil": stamp(T0 + timedelta(days=30))}))
    passport.append(soh(OEM, previous=passport.head, day=4))
    assert (await check(passport, now=T0 + timedelta(days=10))).ok
    report = await check(passport)
    assert errors(report) == {(F.EXPIRED, 3)}
    report = await check(passport, now=T0 + timedelta(days=2, hours=12))
    assert errors(report) == {(F.NOT_YET_VALID, 3), (F.NOT_YET_VALID, 4)}


async def test_undefined_terms_are_verification_findings() -> None:
    passport = lifecycle()
    terms = {k: v for k, v in PASSPORT_TERMS.items() if k != "stateOfHealthPct"}
    bad = copy.deepcopy(soh(RECYCLER, previous=passport.head, day=9))
    bad["@context"] = [CREDENTIALS_V2, terms]  # the signature breaks too; the term shows first
    report = await check([*passport.entries, bad])
    assert F.UNDEFINED_TERM in report.types_at(6)


async def test_garbage_entries_become_findings() -> None:
    passport = lifecycle()
    deep: Any = []
    for _ in range(5000):
        deep = [deep]
    garbage: list[Any] = [
        42, None, "not a jwt", "e30.e30.e30", {"foo": 1}, [1, 2],
        {**passport.entries[0], "junk": deep},
        {**passport.entries[0], "junk": float("nan")},
        {"@context": CONTEXT, "type": ["VerifiableCredential", "StateOfHealthCredential"],
         "issuer": {"no": "id"}, "credentialSubject": {"id": BATTERY}},
    ]
    report = await check([*passport.entries, *garbage])
    assert errors(report) == {(F.MALFORMED_ENTRY, i) for i in range(6, 6 + len(garbage))}
    assert report.order == [0, 1, 2, 3, 4, 5] and report.head == passport.head


@pytest.mark.parametrize("given", [42, "a string", {"a": "dict"}, b"bytes", None])
async def test_not_a_list_at_all(given: Any) -> None:
    report = await check(given)
    assert not report.ok and errors(report) == {(F.MALFORMED_ENTRY, None)}


async def test_an_empty_passport_has_nothing_wrong() -> None:
    report = await check([])
    assert report.ok and report.order == [] and report.head is None


async def test_a_duplicate_entry_is_counted_once() -> None:
    passport = lifecycle()
    report = await check([*passport.entries, copy.deepcopy(passport.entries[2])])
    assert report.ok
    assert [(f.type, f.index) for f in report.warnings] == [(F.DUPLICATE_ENTRY, 6)]
    assert report.order == [0, 1, 2, 3, 4, 5]


async def test_a_second_unlinked_entry_is_a_missing_link() -> None:
    passport = lifecycle()
    stray = soh(RECYCLER, previous=None, day=9)
    report = await check([*passport.entries, stray])
    assert errors(report) == {(F.MISSING_LINK, 6)}
    # The chain heading the most entries is the passport, wherever it is stored.
    report = await check([stray, *passport.entries])
    assert errors(report) == {(F.MISSING_LINK, 0)}
    assert report.order == [1, 2, 3, 4, 5, 6]


async def test_credential_status_is_a_warning_until_revocation_lists_exist() -> None:
    passport = lifecycle()
    status = {"id": "https://status.example/1#7", "type": "BitstringStatusListEntry",
              "statusPurpose": "revocation", "statusListIndex": "7",
              "statusListCredential": "https://status.example/1"}
    passport.append(soh(RECYCLER, previous=passport.head, day=9,
                        extra={"credentialStatus": status}))
    report = await check(passport)
    assert report.ok
    assert [(f.type, f.index) for f in report.warnings] == [(F.STATUS_NOT_CHECKED, 6)]


# --- repurposing ----------------------------------------------------------------------------


def repurposed() -> tuple[Passport, Passport]:
    original = original_for_repurposing()
    second = Passport.repurposed_from(original, repurposing(previous=original.head))
    second.append(soh(REPURPOSER, previous=second.head, day=5, battery=SECOND_LIFE))
    return original, second


async def test_a_repurposed_passport_links_to_the_original_head() -> None:
    original, second = repurposed()
    assert (await check(original)).ok
    for given in (second, list(second.entries)):
        report = await check(given, original=original)
        assert report.ok, report.findings
        assert report.battery == SECOND_LIFE and report.custodian == REPURPOSER.controller
    assert (await check(list(second.entries), original=second.origin)).ok
    assert (await check(second)).ok  # repurposed_from recorded the origin


async def test_a_repurposing_link_cannot_be_checked_without_the_original() -> None:
    _, second = repurposed()
    report = await check(list(second.entries))
    assert errors(report) == {(F.BROKEN_LINK, 0)}
    assert report.order == [0, 1]


async def test_a_repurposing_link_to_a_wrong_digest() -> None:
    original = original_for_repurposing()
    wrong = repurposing(previous=original.digests[2])
    follow = soh(REPURPOSER, previous=credential_digest(wrong), day=5, battery=SECOND_LIFE)
    report = await check([wrong, follow], original=original)
    assert errors(report) == {(F.BROKEN_LINK, 0)}

    other = Origin(BATTERY, original.digests[1], OEM.controller)
    _, second = repurposed()
    report = await check(list(second.entries), original=other)
    assert (F.BROKEN_LINK, 0) in errors(report)


async def test_repurposing_by_someone_without_custody() -> None:
    original = original_for_repurposing()
    grab = repurposing(STRANGER, previous=original.head)
    report = await check([grab], original=original)
    assert errors(report) == {(F.CUSTODY_VIOLATION, 0)}


async def test_repurposing_naming_another_original_battery() -> None:
    original = original_for_repurposing()
    wrong = repurposing(previous=original.head, original=OTHER_BATTERY)
    report = await check([wrong], original=original)
    assert errors(report) == {(F.INVALID_REPURPOSING, 0)}


async def test_an_empty_original_is_a_finding_not_an_error() -> None:
    _, second = repurposed()
    report = await check(list(second.entries), original=Passport(BATTERY))
    assert (F.BROKEN_LINK, None) in errors(report)


# --- plumbing -------------------------------------------------------------------------------


def test_every_verifier_problem_has_a_finding_of_its_name() -> None:
    for problem in ProblemType:
        assert finding_type_of_problem(problem) == str(problem)


async def test_each_entry_is_verified_once() -> None:
    class CountingVerifier(Verifier):
        calls = 0

        async def verify_credential(self, credential: Any, options: Any = None) -> Any:
            CountingVerifier.calls += 1
            return await super().verify_credential(credential, options)

    passport = lifecycle()
    report = await check([*passport.entries, passport.entries[1]], verifier=CountingVerifier())
    assert report.ok and CountingVerifier.calls == 6


async def test_a_crashing_verifier_becomes_a_finding() -> None:
    class BrokenVerifier(Verifier):
        async def verify_credential(self, credential: Any, options: Any = None) -> Any:
            raise RuntimeError("boom")

    report = await check(lifecycle(), verifier=BrokenVerifier())
    assert {i for t, i in errors(report) if t is F.VERIFICATION_FAILED} == set(range(6))
    # Unverified transfers hand on no custody, so the OEM's and recycler's entries say so too.
    assert {i for t, i in errors(report) if t is F.CUSTODY_VIOLATION} == {2, 3, 4, 5}


async def test_report_json_lists_findings_with_index_digest_and_severity() -> None:
    entries = list(lifecycle().entries)
    del entries[2]
    body = (await check(entries)).to_json()
    assert body["ok"] is False and body["entries"] == 5 and body["errors"] == 3
    first = body["findings"][0]
    assert first["type"] == "broken-link" and first["index"] == 2
    assert first["severity"] == "error" and first["digest"] == credential_digest(entries[2])
    assert first["message"]


async def test_a_cell_maker_can_audit_a_passport_with_only_its_own_entries() -> None:
    passport = Passport(BATTERY)
    passport.append(make_entry("BatteryManufacturingCredential", CELL_MAKER, previous=None,
                               day=0, fields={"manufacturingDate": "2026-01-05"}))
    passport.append(soh(CELL_MAKER, previous=passport.head, day=1))
    report = await check(passport)
    assert report.ok and report.custodian == CELL_MAKER.controller
    assert OEM.controller != report.custodian
