"""Bitstring Status List v1.0: issuing lists, revoking/suspending, and the verifier's check."""

from __future__ import annotations

import asyncio
import base64
import gzip
import itertools
import json
import random
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from support import BATTERY, ISSUER, NOW, STRANGER, credential_v1, credential_v2, problem_types

from credentials import (
    JCS,
    RDFC,
    ProblemType,
    VerificationResult,
    Verifier,
    VerifyOptions,
    create_presentation,
    issue_credential,
    issue_jwt_credential,
    key_from_seed,
    sign_presentation,
)
from credentials.errors import MalformedDocument
from credentials.status_list import (
    MIN_STATUS_LIST_ENTRIES,
    REVOCATION,
    STATUS_CONTEXT_V1,
    SUSPENSION,
    StatusChecker,
    StatusList,
    StatusListError,
    StatusListFull,
    StatusListIssuer,
    attach_status,
    decode_bitstring,
    encode_bitstring,
    issue_status_list_credential,
    read_status,
)
from vocab import CREDENTIALS_V2

REVOCATION_URL = "https://issuer.example/status/1"
SUSPENSION_URL = "https://issuer.example/status/2"
#: The encodedList of the spec's example BitstringStatusListCredential (an empty 16 KB list).
SPEC_EMPTY_LIST = "uH4sIAAAAAAAAA-3BMQEAAADCoPVPbQwfoAAAAAAAAAAAAAAAAAAAAIC3AYbSVKsAQAAA"
HOLDER = key_from_seed(bytes([4] * 32))


def revocation_list(seed: int = 1) -> StatusList:
    return StatusList(REVOCATION_URL, REVOCATION, rng=random.Random(seed))


def suspension_list(seed: int = 2) -> StatusList:
    return StatusList(SUSPENSION_URL, SUSPENSION, rng=random.Random(seed))


def issue_with_status(*entries: dict[str, Any], fmt: str = RDFC,
                      unsigned: dict[str, Any] | None = None) -> dict[str, Any] | str:
    doc = attach_status(unsigned or credential_v2(), list(entries))
    if fmt == "jwt":
        return issue_jwt_credential(doc, ISSUER, now=NOW)
    return json.loads(json.dumps(issue_credential(doc, ISSUER, suite=fmt, now=NOW)))


class Lists:
    """An in-memory 'web': URL → published list credential, counting fetches per URL."""

    def __init__(self) -> None:
        self.published: dict[str, dict[str, Any] | str] = {}
        self.fetches: dict[str, int] = {}
        self.fail = False

    def publish(self, status_list: StatusList, *, key: Any = ISSUER, suite: str = RDFC,
                **kwargs: Any) -> dict[str, Any] | str:
        kwargs.setdefault("now", NOW)
        credential = issue_status_list_credential(status_list, key, suite=suite, **kwargs)
        self.published[status_list.url] = credential
        return credential

    async def __call__(self, url: str) -> dict[str, Any] | str:
        self.fetches[url] = self.fetches.get(url, 0) + 1
        if self.fail:
            raise ConnectionError("connection refused")
        if url not in self.published:
            raise LookupError(f"404 {url}")
        return json.loads(json.dumps(self.published[url]))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def checker(lists: Lists, **kwargs: Any) -> StatusChecker:
    return StatusChecker(lists, **kwargs)


async def verify(credential: Any, status_checker: StatusChecker | None,
                 options: VerifyOptions | None = None) -> VerificationResult:
    result = await Verifier(status_checker=status_checker).verify_credential(
        credential, options or VerifyOptions(now=NOW))
    body = json.loads(json.dumps(result.to_json()))
    assert body["verified"] is result.verified
    assert body["statusChecked"] is result.status_checked
    return result


# --- the bitstring ----------------------------------------------------------------------------


def test_an_empty_list_encodes_exactly_as_the_spec_example() -> None:
    encoded = revocation_list().encoded_list()
    assert encoded == SPEC_EMPTY_LIST
    assert decode_bitstring(SPEC_EMPTY_LIST) == bytes(16 * 1024)


def test_a_16kb_list_gzips_and_decodes_with_its_bits() -> None:
    status_list = revocation_list()
    indices = [status_list.allocate() for _ in range(300)]
    for index in indices[:150]:
        status_list.revoke(index)
    encoded = status_list.encoded_list()
    assert encoded.startswith("u") and "=" not in encoded
    raw = base64.urlsafe_b64decode(encoded[1:] + "=" * (-len(encoded[1:]) % 4))
    assert raw[:2] == b"\x1f\x8b"  # a GZIP member, as RFC 1952 defines it
    bits = decode_bitstring(encoded)
    assert len(bits) == MIN_STATUS_LIST_ENTRIES // 8 == 16 * 1024
    assert gzip.decompress(raw) == bits
    for index in indices:
        assert read_status(bits, index) == (1 if index in indices[:150] else 0)


def test_index_zero_is_the_leftmost_bit() -> None:
    bits = bytearray(16 * 1024)
    bits[0] = 0b1000_0000
    bits[1] = 0b0000_0001
    decoded = decode_bitstring(encode_bitstring(bytes(bits)))
    assert [read_status(decoded, i) for i in (0, 1, 14, 15, 16)] == [1, 0, 0, 1, 0]
    assert read_status(decoded, 7, size=2) == 0b01  # bits 14 and 15
    with pytest.raises(StatusListError):
        read_status(decoded, 16 * 1024 * 8)


@pytest.mark.parametrize("encoded", [
    SPEC_EMPTY_LIST[1:],                       # no multibase prefix
    "z" + SPEC_EMPTY_LIST[1:],                 # base58btc prefix
    SPEC_EMPTY_LIST + "==",                    # padding
    "u" + base64.urlsafe_b64encode(b"not gzip").decode().rstrip("="),
    "u" + base64.urlsafe_b64encode(gzip.compress(bytes(10), mtime=0) * 2).decode().rstrip("="),
    "u" + base64.urlsafe_b64encode(gzip.compress(bytes(10), mtime=0)[:-3]).decode().rstrip("="),
])
def test_malformed_encoded_lists_are_refused(encoded: str) -> None:
    with pytest.raises(StatusListError):
        decode_bitstring(encoded)


def test_a_gzip_bomb_is_refused_while_inflating() -> None:
    bomb = encode_bitstring(bytes(4 * 1024 * 1024))  # 4 MiB of zeros, a few KB compressed
    assert len(bomb) < 10_000
    with pytest.raises(StatusListError, match="expands beyond"):
        decode_bitstring(bomb)


# --- allocation -------------------------------------------------------------------------------


def test_allocated_indices_are_unique_random_and_not_sequential() -> None:
    status_list = StatusList(REVOCATION_URL, REVOCATION)  # the real, secrets-backed source
    indices = [status_list.allocate() for _ in range(2000)]
    assert len(set(indices)) == 2000
    assert indices != sorted(indices)
    steps = [b - a for a, b in itertools.pairwise(indices)]
    assert sum(1 for step in steps if step == 1) < 5
    # Spread over the whole list: every eighth of it gets some (expected 250 each).
    eighths = {index * 8 // MIN_STATUS_LIST_ENTRIES for index in indices}
    assert eighths == set(range(8))
    assert status_list.allocated_count == 2000
    assert all(status_list.is_allocated(i) for i in indices)


def test_allocation_fills_the_list_and_then_fails_loudly() -> None:
    status_list = revocation_list(seed=7)
    indices = [status_list.allocate() for _ in range(MIN_STATUS_LIST_ENTRIES)]
    assert sorted(indices) == list(range(MIN_STATUS_LIST_ENTRIES))
    assert status_list.free_count == 0
    with pytest.raises(StatusListFull, match="no free index"):
        status_list.allocate()


def test_lists_below_the_minimum_or_with_other_purposes_are_not_created() -> None:
    with pytest.raises(StatusListError):
        StatusList(REVOCATION_URL, REVOCATION, length=MIN_STATUS_LIST_ENTRIES - 8)
    with pytest.raises(StatusListError):
        StatusList(REVOCATION_URL, "refresh")
    with pytest.raises(StatusListError):
        StatusList("https://issuer.example/status#1", REVOCATION)
    bigger = StatusList(REVOCATION_URL, REVOCATION, length=2 * MIN_STATUS_LIST_ENTRIES)
    assert len(decode_bitstring(bigger.encoded_list())) == 32 * 1024


def test_entry_shape() -> None:
    status_list = revocation_list()
    index = status_list.allocate()
    assert status_list.entry(index) == {
        "id": f"{REVOCATION_URL}#{index}",
        "type": "BitstringStatusListEntry",
        "statusPurpose": "revocation",
        "statusListIndex": str(index),
        "statusListCredential": REVOCATION_URL,
    }
    free = next(i for i in range(10) if not status_list.is_allocated(i))
    with pytest.raises(StatusListError, match="never allocated"):
        status_list.entry(free)


# --- setting and clearing bits ----------------------------------------------------------------


def test_suspension_sets_and_clears_the_bit() -> None:
    status_list = suspension_list()
    index = status_list.allocate()
    assert status_list.status(index) is False
    status_list.suspend(index)
    assert status_list.status(index) is True
    assert read_status(decode_bitstring(status_list.encoded_list()), index) == 1
    status_list.resume(index)
    assert status_list.status(index) is False
    assert status_list.encoded_list() == SPEC_EMPTY_LIST


def test_revocation_is_permanent_and_purposes_do_not_mix() -> None:
    revocations, suspensions = revocation_list(), suspension_list()
    index = revocations.allocate()
    revocations.revoke(index)
    revocations.revoke(index)  # idempotent
    with pytest.raises(StatusListError, match="permanent"):
        revocations.set_status(index, False)
    with pytest.raises(StatusListError, match="revocation list"):
        revocations.resume(index)
    with pytest.raises(StatusListError, match="revocation list"):
        revocations.suspend(index)
    with pytest.raises(StatusListError, match="suspension list"):
        suspensions.revoke(suspensions.allocate())


def test_bits_of_unallocated_indices_cannot_be_set() -> None:
    status_list = revocation_list()
    with pytest.raises(StatusListError, match="never allocated"):
        status_list.revoke(12345)
    with pytest.raises(StatusListError, match="outside"):
        status_list.revoke(MIN_STATUS_LIST_ENTRIES)
    with pytest.raises(StatusListError, match="outside"):
        status_list.revoke(True)  # type: ignore[arg-type]


# --- persistence ------------------------------------------------------------------------------


def test_state_round_trips_through_json_and_never_reuses_an_index() -> None:
    status_list = revocation_list()
    taken = [status_list.allocate() for _ in range(500)]
    status_list.revoke(taken[0])
    state = json.loads(json.dumps(status_list.to_json()))
    restored = StatusList.from_json(state, rng=random.Random(99))
    assert restored.to_json() == state
    assert restored.status(taken[0]) and not restored.status(taken[1])
    assert restored.allocated_count == 500
    more = [restored.allocate() for _ in range(2000)]
    assert not set(more) & set(taken)


@pytest.mark.parametrize("corrupt", [
    lambda s: s.update(allocatedCount=s["allocatedCount"] + 1),
    lambda s: s.update(version=2),
    lambda s: s.update(length=MIN_STATUS_LIST_ENTRIES * 2),
    # a status bit on an index that was never handed out
    lambda s: s.update(encodedList=encode_bitstring(b"\xff" + bytes(16 * 1024 - 1))),
])
def test_corrupt_state_is_refused(corrupt: Callable[[dict[str, Any]], None]) -> None:
    status_list = revocation_list()
    status_list.allocate()
    state = status_list.to_json()
    corrupt(state)
    with pytest.raises(StatusListError):
        StatusList.from_json(state)


def test_issuer_allocates_per_purpose_and_acts_on_credentials() -> None:
    issuer = StatusListIssuer(ISSUER, rng=random.Random(3))
    issuer.create_list(REVOCATION_URL, REVOCATION)
    issuer.create_list(SUSPENSION_URL, SUSPENSION)
    entries = issuer.allocate_entries(REVOCATION, SUSPENSION)
    assert [e["statusPurpose"] for e in entries] == [REVOCATION, SUSPENSION]
    credential = issue_with_status(*entries)
    issuer.suspend(credential)
    assert issuer.status(credential, SUSPENSION) and not issuer.status(credential, REVOCATION)
    issuer.resume(credential)
    issuer.revoke(credential)
    assert issuer.status(credential, REVOCATION) and not issuer.status(credential, SUSPENSION)
    restored = StatusListIssuer.from_json(json.loads(json.dumps(issuer.to_json())), ISSUER)
    assert restored.status(credential, REVOCATION)
    with pytest.raises(StatusListError, match="no suspension entry"):
        issuer.suspend(entries[0])
    with pytest.raises(StatusListError, match="no refresh status list"):
        issuer.allocate_entries("refresh")


def test_a_full_issuer_list_is_reported_not_replaced() -> None:
    issuer = StatusListIssuer(ISSUER, rng=random.Random(3))
    full = issuer.create_list(REVOCATION_URL, REVOCATION)
    for _ in range(full.length):
        full.allocate()
    with pytest.raises(StatusListFull):
        issuer.allocate_entries(REVOCATION)
    issuer.create_list("https://issuer.example/status/3", REVOCATION)
    (entry,) = issuer.allocate_entries(REVOCATION)
    assert entry["statusListCredential"] == "https://issuer.example/status/3"


def test_attach_status() -> None:
    entry = revocation_list().allocate_entry()
    v2 = attach_status(credential_v2(), entry)
    assert v2["credentialStatus"] == entry
    assert STATUS_CONTEXT_V1 not in v2["@context"]
    v1 = attach_status(credential_v1(), [entry, suspension_list().allocate_entry()])
    assert v1["@context"][-1] == STATUS_CONTEXT_V1
    assert len(v1["credentialStatus"]) == 2
    signed = issue_credential(credential_v2(), ISSUER, now=NOW)
    with pytest.raises(MalformedDocument, match="before signing"):
        attach_status(signed, entry)
    with pytest.raises(MalformedDocument, match="already"):
        attach_status(v2, entry)


@pytest.mark.parametrize("suite", [RDFC, JCS])
async def test_the_list_credential_is_a_verifiable_vcdm2_credential(suite: str) -> None:
    status_list = revocation_list()
    credential = issue_status_list_credential(
        status_list, ISSUER, suite=suite, now=NOW, valid_until=NOW + timedelta(days=1),
        ttl_ms=60_000)
    assert isinstance(credential, dict)
    assert credential["@context"] == [CREDENTIALS_V2]
    assert credential["id"] == REVOCATION_URL
    assert credential["type"] == ["VerifiableCredential", "BitstringStatusListCredential"]
    assert credential["credentialSubject"] == {
        "id": f"{REVOCATION_URL}#list", "type": "BitstringStatusList",
        "statusPurpose": "revocation", "encodedList": SPEC_EMPTY_LIST, "ttl": 60_000}
    result = await verify(credential, None)
    assert result.verified, result.problems


# --- the verifier's check ---------------------------------------------------------------------


@pytest.mark.parametrize("fmt", [RDFC, JCS, "jwt"])
async def test_a_valid_credential_with_status_verifies_and_says_so(fmt: str) -> None:
    lists, status_list = Lists(), revocation_list()
    lists.publish(status_list, suite=fmt)
    credential = issue_with_status(status_list.allocate_entry(), fmt=fmt)
    result = await verify(credential, checker(lists))
    assert result.verified, result.problems
    assert result.status_checked
    assert result.warnings == []


@pytest.mark.parametrize("fmt", [RDFC, JCS, "jwt"])
async def test_a_revoked_credential_fails_with_revoked(fmt: str) -> None:
    lists, status_list = Lists(), revocation_list()
    index = status_list.allocate()
    status_list.revoke(index)
    lists.publish(status_list)
    result = await verify(issue_with_status(status_list.entry(index), fmt=fmt), checker(lists))
    assert problem_types(result) == [ProblemType.REVOKED]
    assert result.status_checked


async def test_a_vcdm11_credential_can_be_revoked() -> None:
    lists, status_list = Lists(), revocation_list()
    index = status_list.allocate()
    credential = issue_with_status(status_list.entry(index), unsigned=credential_v1())
    lists.publish(status_list)
    assert (await verify(credential, checker(lists))).verified
    status_list.revoke(index)
    lists.publish(status_list)
    assert problem_types(await verify(credential, checker(lists))) == [ProblemType.REVOKED]


async def test_suspended_then_resumed() -> None:
    lists, status_list, clock = Lists(), suspension_list(), Clock()
    index = status_list.allocate()
    credential = issue_with_status(status_list.entry(index))
    status_checker = checker(lists, max_age_s=60, clock=clock)
    status_list.suspend(index)
    lists.publish(status_list)
    assert problem_types(await verify(credential, status_checker)) == [ProblemType.SUSPENDED]
    status_list.resume(index)
    lists.publish(status_list)
    # Still cached: the verifier keeps its answer for max_age (the spec asks verifiers to cache).
    assert problem_types(await verify(credential, status_checker)) == [ProblemType.SUSPENDED]
    clock.now += 61
    result = await verify(credential, status_checker)
    assert result.verified and result.status_checked


async def test_revocation_and_suspension_entries_are_both_checked() -> None:
    lists, revocations, suspensions = Lists(), revocation_list(), suspension_list()
    entries = [revocations.allocate_entry(), suspensions.allocate_entry()]
    credential = issue_with_status(*entries)
    suspensions.suspend(int(entries[1]["statusListIndex"]))
    lists.publish(revocations)
    lists.publish(suspensions)
    result = await verify(credential, checker(lists))
    assert problem_types(result) == [ProblemType.SUSPENDED]
    assert lists.fetches == {REVOCATION_URL: 1, SUSPENSION_URL: 1}


def tampered_list() -> tuple[Lists, dict[str, Any] | str]:
    lists, status_list = Lists(), revocation_list()
    index = status_list.allocate()
    published = lists.publish(status_list)
    assert isinstance(published, dict)
    # Flip the credential's bit without re-signing: the list no longer verifies.
    status_list.revoke(index)
    published["credentialSubject"]["encodedList"] = status_list.encoded_list()
    return lists, issue_with_status(status_list.entry(index))


async def test_a_tampered_list_fails_closed_by_default() -> None:
    lists, credential = tampered_list()
    result = await verify(credential, checker(lists))
    assert problem_types(result) == [ProblemType.STATUS_UNAVAILABLE]
    assert "does not verify" in result.problems[0].message
    assert not result.status_checked


async def test_a_tampered_list_can_be_allowed_with_a_warning() -> None:
    lists, credential = tampered_list()
    result = await verify(credential, checker(lists, on_unavailable="warn"))
    assert result.verified
    assert [w.type for w in result.warnings] == [ProblemType.STATUS_UNAVAILABLE]
    assert not result.status_checked
    assert result.to_json()["warnings"][0]["type"] == "status-unavailable"


async def test_an_unreachable_list_is_unavailable() -> None:
    lists, status_list = Lists(), revocation_list()
    credential = issue_with_status(status_list.allocate_entry())
    result = await verify(credential, checker(lists))
    assert problem_types(result) == [ProblemType.STATUS_UNAVAILABLE]
    assert "cannot fetch" in result.problems[0].message


async def test_a_list_from_another_issuer_is_refused_unless_delegated() -> None:
    lists, status_list = Lists(), revocation_list()
    lists.publish(status_list, key=STRANGER)
    credential = issue_with_status(status_list.allocate_entry())
    result = await verify(credential, checker(lists))
    assert problem_types(result) == [ProblemType.STATUS_UNAVAILABLE]
    assert STRANGER.controller in result.problems[0].message
    delegated = checker(lists, list_issuer_allowed=lambda issuer, lister: (
        issuer == ISSUER.controller and lister == STRANGER.controller))
    assert (await verify(credential, delegated)).verified


async def test_a_purpose_mismatch_is_unavailable() -> None:
    lists, revocations = Lists(), revocation_list()
    lists.publish(revocations)
    entry = {**revocations.allocate_entry(), "statusPurpose": SUSPENSION}
    result = await verify(issue_with_status(entry), checker(lists))
    assert problem_types(result) == [ProblemType.STATUS_UNAVAILABLE]
    assert "statusPurpose" in result.problems[0].message


async def test_an_expired_or_future_list_is_unavailable() -> None:
    lists, status_list = Lists(), revocation_list()
    credential = issue_with_status(status_list.allocate_entry())
    lists.publish(status_list, now=NOW - timedelta(days=2), valid_until=NOW - timedelta(days=1))
    assert problem_types(await verify(credential, checker(lists))) == [
        ProblemType.STATUS_UNAVAILABLE]
    lists.publish(status_list, now=NOW + timedelta(days=1))
    assert problem_types(await verify(credential, checker(lists))) == [
        ProblemType.STATUS_UNAVAILABLE]


async def test_a_list_served_under_another_url_is_unavailable() -> None:
    lists, status_list = Lists(), revocation_list()
    entry = status_list.allocate_entry()
    lists.published["https://issuer.example/status/9"] = lists.publish(status_list)
    entry = {**entry, "statusListCredential": "https://issuer.example/status/9",
             "id": "https://issuer.example/status/9#1"}
    result = await verify(issue_with_status(entry), checker(lists))
    assert problem_types(result) == [ProblemType.STATUS_UNAVAILABLE]
    assert "not the URL" in result.problems[0].message


async def test_a_short_list_fails_the_length_check() -> None:
    lists, status_list = Lists(), revocation_list()
    entry = status_list.allocate_entry()
    unsigned = status_list.unsigned_credential(ISSUER.controller, valid_from=NOW)
    unsigned["credentialSubject"]["encodedList"] = encode_bitstring(bytes(1024))
    lists.published[REVOCATION_URL] = issue_credential(unsigned, ISSUER, now=NOW)
    entry["statusListIndex"] = "5"
    result = await verify(issue_with_status(entry), checker(lists))
    assert problem_types(result) == [ProblemType.STATUS_UNAVAILABLE]
    assert "STATUS_LIST_LENGTH_ERROR" in result.problems[0].message
    lenient = checker(lists, min_entries=8 * 1024)
    assert (await verify(issue_with_status(entry), lenient)).verified


async def test_an_index_beyond_the_list_is_a_range_error() -> None:
    lists, status_list = Lists(), revocation_list()
    lists.publish(status_list)
    entry = {**status_list.allocate_entry(), "statusListIndex": str(MIN_STATUS_LIST_ENTRIES)}
    result = await verify(issue_with_status(entry), checker(lists))
    assert problem_types(result) == [ProblemType.STATUS_UNAVAILABLE]
    assert "RANGE_ERROR" in result.problems[0].message


@pytest.mark.parametrize("change", [
    {"statusListIndex": 5},
    {"statusListIndex": "-5"},
    {"statusListIndex": "0x10"},
    {"statusSize": 0},
    {"statusSize": 2},  # statusMessage missing
    {"id": REVOCATION_URL},
])
async def test_a_malformed_entry_is_malformed_even_when_unknown_is_allowed(
    change: dict[str, Any],
) -> None:
    lists, status_list = Lists(), revocation_list()
    lists.publish(status_list)
    credential = issue_with_status({**status_list.allocate_entry(), **change})
    result = await verify(credential, checker(lists, on_unavailable="warn"))
    assert problem_types(result) == [ProblemType.MALFORMED]
    assert lists.fetches == {}


async def test_other_status_mechanisms_and_purposes() -> None:
    status_checker = checker(Lists())
    old = {"id": "https://x.example/sl#1", "type": "StatusList2021Entry",
           "statusPurpose": "revocation", "statusListIndex": "1",
           "statusListCredential": "https://x.example/sl"}
    refresh = {"type": "BitstringStatusListEntry", "statusPurpose": "refresh",
               "statusListIndex": "1", "statusListCredential": "https://x.example/r"}
    statuses = await status_checker.entry_statuses(
        {"issuer": ISSUER.controller, "credentialStatus": [old, refresh]}, now=NOW)
    # The unknown mechanism cannot be read; refresh does not invalidate, so it is not fetched.
    assert [s.problem.type for s in statuses if s.problem] == [ProblemType.STATUS_UNAVAILABLE]
    assert len(statuses) == 1


async def test_a_forged_credential_does_not_make_the_verifier_fetch() -> None:
    lists, status_list = Lists(), revocation_list()
    lists.publish(status_list)
    credential = issue_with_status(status_list.allocate_entry())
    assert isinstance(credential, dict)
    credential["credentialSubject"]["batteryModel"] = "forged"
    result = await verify(credential, checker(lists))
    assert ProblemType.BAD_SIGNATURE in problem_types(result)
    assert lists.fetches == {}
    assert not result.status_checked


async def test_without_a_checker_the_status_is_flagged_not_checked() -> None:
    status_list = revocation_list()
    index = status_list.allocate()
    status_list.revoke(index)
    result = await verify(issue_with_status(status_list.entry(index)), None)
    assert result.verified  # today's behaviour, but visibly so:
    assert not result.status_checked
    assert [w.type for w in result.warnings] == [ProblemType.STATUS_NOT_CHECKED]
    plain = await verify(issue_credential(credential_v2(), ISSUER, now=NOW), None)
    assert plain.verified and plain.warnings == [] and not plain.status_checked


async def test_a_revoked_credential_fails_inside_a_presentation() -> None:
    lists, status_list = Lists(), revocation_list()
    good, bad = status_list.allocate(), status_list.allocate()
    status_list.revoke(bad)
    lists.publish(status_list)
    vp = create_presentation([issue_with_status(status_list.entry(good)),
                              issue_with_status(status_list.entry(bad), fmt="jwt")],
                             HOLDER.controller)
    signed = sign_presentation(vp, HOLDER, challenge="c-1", domain="d.example", now=NOW)
    result = await Verifier(status_checker=checker(lists)).verify_presentation(
        signed, VerifyOptions(challenge="c-1", domain="d.example", now=NOW))
    assert not result.verified
    assert [problem_types(c) for c in result.credentials] == [[], [ProblemType.REVOKED]]
    assert [c.status_checked for c in result.credentials] == [True, True]
    assert lists.fetches == {REVOCATION_URL: 1}


# --- caching ----------------------------------------------------------------------------------


async def test_the_fetcher_is_called_once_per_max_age_window() -> None:
    lists, status_list, clock = Lists(), revocation_list(), Clock()
    lists.publish(status_list)
    credentials = [issue_with_status(status_list.allocate_entry()) for _ in range(3)]
    status_checker = checker(lists, max_age_s=300, clock=clock)
    for credential in credentials:
        assert (await verify(credential, status_checker)).verified
    assert lists.fetches == {REVOCATION_URL: 1}
    clock.now += 299
    assert (await verify(credentials[0], status_checker)).verified
    assert lists.fetches == {REVOCATION_URL: 1}
    clock.now += 2
    assert (await verify(credentials[0], status_checker)).verified
    assert lists.fetches == {REVOCATION_URL: 2}


async def test_concurrent_checks_share_one_fetch() -> None:
    lists, status_list = Lists(), revocation_list()
    lists.publish(status_list)
    credential = issue_with_status(status_list.allocate_entry())
    status_checker = checker(lists, clock=Clock())
    results = await asyncio.gather(*(verify(credential, status_checker) for _ in range(10)))
    assert all(r.verified for r in results)
    assert lists.fetches == {REVOCATION_URL: 1}


async def test_the_list_ttl_shortens_the_cache() -> None:
    lists, status_list, clock = Lists(), revocation_list(), Clock()
    lists.publish(status_list, ttl_ms=10_000)
    credential = issue_with_status(status_list.allocate_entry())
    status_checker = checker(lists, max_age_s=300, clock=clock)
    await verify(credential, status_checker)
    clock.now += 9
    await verify(credential, status_checker)
    assert lists.fetches == {REVOCATION_URL: 1}
    clock.now += 2
    await verify(credential, status_checker)
    assert lists.fetches == {REVOCATION_URL: 2}


async def test_the_list_valid_until_bounds_the_cache() -> None:
    lists, status_list, clock = Lists(), revocation_list(), Clock()
    lists.publish(status_list, valid_until=NOW + timedelta(seconds=30))
    credential = issue_with_status(status_list.allocate_entry())
    status_checker = checker(lists, max_age_s=300, clock=clock)
    assert (await verify(credential, status_checker)).verified
    clock.now += 31
    # The cached copy is stale by then, and the list itself has expired at the later moment.
    later = VerifyOptions(now=NOW + timedelta(seconds=31))
    result = await verify(credential, status_checker, later)
    assert lists.fetches == {REVOCATION_URL: 2}
    assert problem_types(result) == [ProblemType.STATUS_UNAVAILABLE]


async def test_failures_are_retried_after_a_pause_not_on_every_check() -> None:
    lists, status_list, clock = Lists(), revocation_list(), Clock()
    lists.publish(status_list)
    lists.fail = True
    credential = issue_with_status(status_list.allocate_entry())
    status_checker = checker(lists, retry_after_failure_s=30, clock=clock)
    for _ in range(3):
        result = await verify(credential, status_checker)
        assert problem_types(result) == [ProblemType.STATUS_UNAVAILABLE]
    assert lists.fetches == {REVOCATION_URL: 1}
    lists.fail = False
    clock.now += 31
    assert (await verify(credential, status_checker)).verified
    assert lists.fetches == {REVOCATION_URL: 2}


async def test_a_cached_list_still_checks_the_issuer_per_credential() -> None:
    lists, status_list = Lists(), revocation_list()
    lists.publish(status_list)
    status_checker = checker(lists, clock=Clock())
    mine = issue_with_status(status_list.allocate_entry())
    assert (await verify(mine, status_checker)).verified
    # BATTERY names ISSUER's list for its own credential: the cached list must not serve it.
    theirs = attach_status({**credential_v2(), "issuer": BATTERY.controller},
                           status_list.allocate_entry())
    signed = issue_credential(theirs, BATTERY, now=NOW)
    result = await verify(signed, status_checker)
    assert problem_types(result) == [ProblemType.STATUS_UNAVAILABLE]
    assert lists.fetches == {REVOCATION_URL: 1}
