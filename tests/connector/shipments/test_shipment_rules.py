"""Product or waste on plain data: declarations built in memory with did:key parties (no
network: did:key resolves offline, status lists come from a dict), then forged, cut down and
spoiled one piece at a time. Each bad declaration must name exactly the piece at fault."""

from __future__ import annotations

import copy
import json
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connector import samples
from connector.shipments.attestation import attestation_credential, policy_digest
from connector.shipments.declaration import BatteryShipment, Consignment, build_declaration
from connector.shipments.page import render_page
from connector.shipments.rules import ShipmentVerdict, classify
from connector.shipments.verify import check_signatures
from connector.store import AgreementRecord
from credentials import JCS, Verifier
from credentials.did_key import key_from_seed
from credentials.holder import sign_presentation
from credentials.issuer import issue_credential
from credentials.resolver import DIDResolver
from credentials.status_list import REVOCATION, StatusChecker, StatusListIssuer, attach_status
from credentials.trust import TrustRegistry

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
SHIPPER, FACILITY, AUTHORITY, TESTER, STRANGER = (key_from_seed(bytes([n]) * 32)
                                                  for n in range(1, 6))
BATTERIES = [key_from_seed(bytes([40 + n]) * 32).controller for n in range(3)]
STATUS_URL = "https://authority.example/status/revocation-1"
AGREEMENT = AgreementRecord(
    id="urn:uuid:6f1c0f7e-0c8b-4a43-9d0e-2b1f6f0d7a11", asset_id="urn:asset:pack-handover",
    provider_did=SHIPPER.controller, consumer_did=FACILITY.controller,
    agreement={"@id": "urn:uuid:6f1c0f7e-0c8b-4a43-9d0e-2b1f6f0d7a11", "@type": "Agreement",
               "permission": [{"action": "use"}], "target": "urn:asset:pack-handover"},
    signed_at=NOW - timedelta(days=2), not_after=NOW + timedelta(days=30))


class World:
    """The parties, the authority's status list and a trust registry of the officer."""

    def __init__(self) -> None:
        self.lists = StatusListIssuer(AUTHORITY, suite=JCS, rng=random.Random(1))
        self.lists.create_list(STATUS_URL, REVOCATION)
        self.trust = TrustRegistry()
        self.trust.trust("TreatmentFacilityAuthorisationCredential", AUTHORITY.controller)
        self.trust.trust("FunctionalityTestCredential", TESTER.controller)

    def authorisation(self, *, issuer: Any = AUTHORITY, operations: tuple[str, ...] = (
            "Repair", "Repurposing", "Recycling")) -> dict[str, Any]:
        unsigned = samples.treatment_facility_authorisation(
            FACILITY.controller, issuer.controller, operations=list(operations),
            rng=random.Random(2), issued=NOW - timedelta(days=100))
        if issuer is AUTHORITY:
            unsigned = attach_status(unsigned, self.lists.allocate_entries(REVOCATION))
        return issue_credential(unsigned, issuer, suite=JCS, now=NOW - timedelta(days=100))

    def verifier(self) -> Verifier:
        async def fetch(url: str) -> Any:
            return self.lists.list_credential(url, now=NOW - timedelta(hours=1))

        resolver = DIDResolver()
        return Verifier(resolver, status_checker=StatusChecker(fetch, resolver=resolver))


def attestation(key: Any, agreement: AgreementRecord = AGREEMENT, *,
                until: datetime | None = None) -> dict[str, Any]:
    unsigned = attestation_credential(agreement, key.controller, NOW - timedelta(hours=2),
                                      until or NOW + timedelta(days=30))
    return issue_credential(unsigned, key, suite=JCS, now=NOW - timedelta(hours=2))


def functionality_record(battery: str, soh: str = "82.0", result: str = "pass",
                    days_ago: int = 1) -> dict[str, Any]:
    unsigned = samples.functionality_test(
        battery, TESTER.controller, state_of_health_pct=soh, result=result,  # type: ignore[arg-type]
        tested=NOW - timedelta(days=days_ago), rng=random.Random(battery),
        issued=NOW - timedelta(days=days_ago))
    return issue_credential(unsigned, TESTER, suite=JCS, now=NOW - timedelta(days=days_ago))


def consignment(world: World, **changes: Any) -> Consignment:
    purposes = ("Repair", "Repurposing", "Recycling")
    base = Consignment(
        consignor=SHIPPER.controller, consignee=FACILITY.controller, destination_country="DE",
        agreement_id=AGREEMENT.id, policy_digest=policy_digest(AGREEMENT),
        batteries=[BatteryShipment(b, p, functionality_record(b)) for b, p in
                   zip(BATTERIES, purposes, strict=True)],
        attestations=[attestation(SHIPPER), attestation(FACILITY)],
        facility_authorisations=[world.authorisation()],
        declaration_id="urn:uuid:2f0e4b8e-5a7c-4d1e-8a55-0f3b9c1d2e01")
    return replace(base, **changes)


async def judge(world: World, declaration: Any, now: datetime = NOW) -> ShipmentVerdict:
    checks = await check_signatures(declaration, world.verifier(), now)
    return classify(declaration, checks, world.trust, now)


def codes(verdict: ShipmentVerdict, battery: int = 0) -> set[str]:
    return {f.code for f in verdict.items[battery].missing}


@pytest.fixture
def world() -> World:
    return World()


async def test_a_complete_declaration_makes_products_of_repair_and_repurposing(
        world: World) -> None:
    verdict = await judge(world, build_declaration(consignment(world), SHIPPER, NOW))
    assert verdict.signature_valid and verdict.findings == []
    assert [(i.classification, i.rule) for i in verdict.items] == [
        ("product-repair", "product-repair"), ("product-repurposing", "product-repurposing"),
        ("waste", "declared-recycling")]
    assert all(not i.missing for i in verdict.items)
    assert json.loads(json.dumps(verdict.to_json()))["items"][1]["label"] == \
        "product (repurposing)"


async def test_a_forged_signature_makes_every_battery_waste(world: World) -> None:
    declaration = build_declaration(consignment(world), SHIPPER, NOW)
    forged = copy.deepcopy(declaration)
    forged["verifiableCredential"][0]["credentialSubject"]["consignmentItem"][2][
        "shipmentPurpose"] = "Repair"
    verdict = await judge(world, forged)
    assert not verdict.signature_valid
    assert [i.classification for i in verdict.items] == ["waste"] * 3
    assert verdict.items[2].rule == "basel-declaration"
    assert {"presentation-signature", "declaration-signature"} <= codes(verdict, 2)
    # presented (and validly signed) by someone else than the shipper who declared
    unsigned = {k: v for k, v in declaration.items() if k not in ("proof", "holder")}
    resigned = sign_presentation(unsigned, STRANGER, challenge=declaration["id"],
                                 domain=FACILITY.controller, suite=JCS, now=NOW)
    verdict = await judge(world, resigned)
    assert "presentation-signature" not in codes(verdict)
    assert verdict.items[0].rule == "basel-declaration"
    assert "declaration-not-by-shipper" in codes(verdict)


async def test_a_removed_test_is_named(world: World) -> None:
    declaration = build_declaration(consignment(world), SHIPPER, NOW)
    cut = copy.deepcopy(declaration)
    cut["verifiableCredential"] = [c for c in cut["verifiableCredential"]
                                   if c["credentialSubject"].get("id") != BATTERIES[1]]
    verdict = await judge(world, cut)
    assert verdict.items[1].classification == "waste"
    assert {"presentation-signature", "functionality-test-missing"} <= codes(verdict, 1)


async def test_a_missing_test_signed_by_the_shipper_is_named(world: World) -> None:
    base = consignment(world)
    untested = replace(base, batteries=[replace(base.batteries[1], functionality_test=None)])
    verdict = await judge(world, build_declaration(untested, SHIPPER, NOW))
    assert verdict.signature_valid
    item = verdict.items[0]
    assert (item.classification, item.rule) == ("waste", "basel-testing")
    assert [f.code for f in item.missing] == ["functionality-test-missing"]


@pytest.mark.parametrize(("soh", "result", "days_ago", "code"), [
    ("82.0", "fail", 1, "functionality-test-failed"),
    ("58.5", "pass", 1, "state-of-health-too-low"),
    ("82.0", "pass", 400, "functionality-test-too-old"),
])
async def test_a_bad_test_makes_a_repurposed_battery_waste(
        world: World, soh: str, result: str, days_ago: int, code: str) -> None:
    base = consignment(world)
    spoiled = replace(base.batteries[1], functionality_test=functionality_record(
        BATTERIES[1], soh, result, days_ago))
    verdict = await judge(world, build_declaration(replace(base, batteries=[spoiled]),
                                                   SHIPPER, NOW))
    assert verdict.items[0].classification == "waste"
    assert verdict.items[0].rule == "basel-testing"
    assert code in codes(verdict)


async def test_a_failed_test_still_allows_repair(world: World) -> None:
    base = consignment(world)
    defective = replace(base.batteries[0], functionality_test=functionality_record(
        BATTERIES[0], "55.0", "fail"))
    verdict = await judge(world, build_declaration(replace(base, batteries=[defective]),
                                                   SHIPPER, NOW))
    assert verdict.items[0].classification == "product-repair"


async def test_an_attestation_from_one_party_only(world: World) -> None:
    declaration = build_declaration(consignment(world, attestations=[attestation(SHIPPER)]),
                                    SHIPPER, NOW)
    verdict = await judge(world, declaration)
    assert verdict.signature_valid
    assert [i.rule for i in verdict.items[:2]] == ["basel-contract", "basel-contract"]
    missing = [f for f in verdict.items[0].missing if f.code == "contract-attestation-missing"]
    assert len(missing) == 1 and FACILITY.controller in missing[0].message


async def test_mismatched_agreement_digests(world: World) -> None:
    other = replace(AGREEMENT, agreement={**AGREEMENT.agreement,
                                          "permission": [{"action": "distribute"}]})
    declaration = build_declaration(consignment(world, attestations=[
        attestation(SHIPPER), attestation(FACILITY, other)]), SHIPPER, NOW)
    verdict = await judge(world, declaration)
    assert verdict.items[0].classification == "waste"
    assert "contract-digest-mismatch" in codes(verdict)


async def test_an_expired_agreement(world: World) -> None:
    ended = NOW - timedelta(hours=1)
    declaration = build_declaration(consignment(world, attestations=[
        attestation(SHIPPER, until=ended), attestation(FACILITY, until=ended)]), SHIPPER, NOW)
    verdict = await judge(world, declaration)
    assert verdict.items[1].rule == "basel-contract"
    assert "contract-expired" in codes(verdict, 1)


async def test_a_consignee_that_is_not_the_agreement_party(world: World) -> None:
    declaration = build_declaration(consignment(world, consignee=STRANGER.controller),
                                    SHIPPER, NOW)
    verdict = await judge(world, declaration)
    assert {"consignee-mismatch", "facility-authorisation-missing"} <= codes(verdict)


async def test_an_untrusted_authority(world: World) -> None:
    declaration = build_declaration(consignment(world, facility_authorisations=[
        world.authorisation(issuer=STRANGER)]), SHIPPER, NOW)
    verdict = await judge(world, declaration)
    assert verdict.items[0].rule == "facility-authorisation"
    assert codes(verdict) == {"facility-untrusted-authority"}
    # the recycling item lists it too: a waste shipment to an unvetted facility
    assert codes(verdict, 2) == {"facility-untrusted-authority"}


async def test_a_facility_not_authorised_for_the_purpose(world: World) -> None:
    declaration = build_declaration(consignment(world, facility_authorisations=[
        world.authorisation(operations=("Recycling",))]), SHIPPER, NOW)
    verdict = await judge(world, declaration)
    assert [i.classification for i in verdict.items] == ["waste"] * 3
    assert codes(verdict) == {"facility-not-authorised"}
    assert codes(verdict, 2) == set()


async def test_a_revoked_authorisation(world: World) -> None:
    permit = world.authorisation()
    declaration = build_declaration(consignment(world, facility_authorisations=[permit]),
                                    SHIPPER, NOW)
    assert (await judge(world, declaration)).items[0].classification == "product-repair"
    world.lists.revoke(permit)
    verdict = await judge(world, declaration)
    assert codes(verdict) == {"facility-revoked"}


async def test_not_a_declaration(world: World) -> None:
    verdict = await judge(world, ["not", "an", "object"])
    assert verdict.items == [] and verdict.findings[0].code == "declaration-malformed"
    verdict = await judge(world, {"@context": ["https://www.w3.org/ns/credentials/v2"],
                                  "type": ["VerifiablePresentation"]})
    assert {f.code for f in verdict.findings} >= {"presentation-signature",
                                                  "declaration-missing"}


async def test_the_page_shows_markup_in_a_credential_as_text(world: World) -> None:
    script = '<script>alert("x")</script><img src=x onerror=alert(1)>'
    base = consignment(world)
    authorisation = samples.treatment_facility_authorisation(
        FACILITY.controller, AUTHORITY.controller, name=script, rng=random.Random(5),
        issued=NOW - timedelta(days=1))
    signed = issue_credential(authorisation, AUTHORITY, suite=JCS, now=NOW - timedelta(days=1))
    declaration = build_declaration(replace(base, facility_authorisations=[signed]),
                                    SHIPPER, NOW)
    # a forged item carrying markup in the battery id and the purpose
    declaration["verifiableCredential"][0]["credentialSubject"]["consignmentItem"][0][
        "batteryDid"] = "did:key:z<b>bold</b>"
    declaration["id"] = script
    html = render_page(await judge(world, declaration))
    assert "<script>" not in html and "<img" not in html and "<b>" not in html
    assert "&lt;script&gt;" in html
