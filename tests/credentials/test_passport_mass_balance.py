"""Mass balance: a hand-built supply chain with shares worked out by hand, one failing input
per finding type, bad data that must become findings (never exceptions), the EU minimums
around 2031 and 2036, the RDF view, and the synthetic 10,000-batch generator."""

from __future__ import annotations

import copy
import random
import uuid
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from rdflib import URIRef

from credentials.passport.mass_balance import check
from credentials.passport.mass_balance_findings import MassBalanceFindingType
from credentials.passport.material_graph import BP, MaterialGraph
from credentials.passport.recycled_content import (
    RecycledShare,
    VerdictStatus,
    compare_with_minimums,
    recycled_content,
)
from credentials.passport.synthetic import synthetic_batch_graph
from vocab import BATTERY_CONTEXT_V1, CREDENTIALS_V2

T = MassBalanceFindingType

MINE_A = "urn:uuid:00000000-0000-4000-8000-00000000000a"
MINE_B = "urn:uuid:00000000-0000-4000-8000-00000000000b"
REFINED = "urn:uuid:00000000-0000-4000-8000-0000000000f1"
RECYCLED = "urn:uuid:00000000-0000-4000-8000-0000000000e1"
CATHODE = "urn:uuid:00000000-0000-4000-8000-0000000000c1"
MISSING = "urn:uuid:00000000-0000-4000-8000-0000000000ff"
BATTERY = "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK"
XSD_DECIMAL = "http://www.w3.org/2001/XMLSchema#decimal"


def credential(kind: str, subject: dict[str, Any]) -> dict[str, Any]:
    return {
        "@context": [CREDENTIALS_V2, BATTERY_CONTEXT_V1],
        "id": f"urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, subject['id'])}",
        "type": ["VerifiableCredential", kind],
        "issuer": "did:web:issuer.example",
        "validFrom": "2026-03-01T00:00:00Z",
        "credentialSubject": {"type": "Battery" if kind.startswith("Battery")
                              else "MaterialBatch", **subject},
    }


def elements(**masses: str | tuple[str, str]) -> list[dict[str, str]]:
    out = []
    for element, value in masses.items():
        mass, recycled = value if isinstance(value, tuple) else (value, None)
        entry = {"element": element, "massKg": mass}
        if recycled is not None:
            entry["recycledMassKg"] = recycled
        out.append(entry)
    return out


def hand_built() -> list[dict[str, Any]]:
    """Two mines, a refiner, a recycler's output, a cathode material blending virgin and
    recycled, a battery.

    Mine A (CD): 1000 kg, Co 300.            Mine B (AU): 1000 kg, Co 100, Ni 450, Li 225.
    Refiner R (FI) draws 400 kg of each (share 0.4 of each):
        Co 0.4*300 + 0.4*100 = 160, Ni 0.4*450 = 180, Li 0.4*225 = 90;
        inputs 800 kg, output 780 kg (loss 2.5 % <= 5 %).
    Recycler Y (DE, no inputs): 100 kg, Co 40, Ni 20, Li 10, all recycled.
    Cathode C (PL) draws 390 of R (share 0.5) and 50 of Y (share 0.5):
        Co 80 + 20 = 100 (recycled 20), Ni 90 + 10 = 100 (recycled 10),
        Li 45 + 5 = 50 (recycled 5); inputs 440 kg, output 430 kg (loss 2.3 %).
    Battery D draws 86 of C (share 0.2):
        Co 20 kg, recycled 4  -> 20 %; Ni 20 kg, recycled 2 -> 10 %;
        Li 10 kg, recycled 1  -> 10 %; no Pb.
    Where D's cobalt came from: 16 of its 20 kg via R, 4 from Y; R's cobalt is 120/160 from A
    and 40/160 from B, so A 12 kg (60 %), B 4 kg (20 %), Y 4 kg (20 %).
    """
    return [
        credential("RawMaterialOriginCredential", {
            "id": MINE_A, "material": "cobalt hydroxide concentrate", "processType": "mining",
            "batchMassKg": "1000", "elementMass": elements(Co="300"),
            "countryOfOrigin": "CD", "productionSite": "Kolwezi, CD",
            "certification": ["RMI RMAP conformant"],
        }),
        credential("RawMaterialOriginCredential", {
            "id": MINE_B, "material": "nickel-cobalt laterite concentrate",
            "processType": "mining", "batchMassKg": "1000.0",
            "elementMass": elements(Co="100", Ni="450", Li="225"),
            "countryOfOrigin": "AU", "productionSite": "Murrin Murrin, AU",
            "certification": ["IRMA 75", "ISO 14001"],
        }),
        credential("RawMaterialOriginCredential", {
            "id": REFINED, "material": "mixed metal sulfate", "processType": "refining",
            "batchMassKg": "780", "elementMass": elements(Co="160", Ni="180.000", Li="90"),
            "input": [{"batch": MINE_A, "massKg": "400"}, {"batch": MINE_B, "massKg": "400"}],
            "countryOfOrigin": "FI", "productionSite": "Kokkola, FI",
            "certification": ["RMI RMAP conformant"],
        }),
        credential("MaterialBatchCredential", {
            "id": RECYCLED, "material": "recycled metal sulfate", "processType": "recycling",
            "batchMassKg": "100",
            "elementMass": elements(Co=("40", "40"), Ni=("20", "20"), Li=("10", "10")),
            "productionSite": "Salzgitter, DE", "countryOfOrigin": "DE",
        }),
        credential("MaterialBatchCredential", {
            "id": CATHODE, "material": "NMC811 cathode active material",
            "processType": "cathode-synthesis", "batchMassKg": "430",
            "elementMass": elements(Co=("100", "20"), Ni=("100", "10"), Li=("50", "5")),
            "input": [{"batch": REFINED, "massKg": "390"}, {"batch": RECYCLED, "massKg": "50"}],
            "productionSite": "Nysa, PL", "countryOfOrigin": "PL",
        }),
        credential("BatteryManufacturingCredential", {
            "id": BATTERY, "batteryChemistry": "NMC811",
            "materialInput": [{"batch": CATHODE, "massKg": "86"}],
            "recycledContentCobaltPct": "20.0", "recycledContentLithiumPct": "10.0",
            "recycledContentNickelPct": "10.0",
        }),
    ]


def subject(credentials: list[dict[str, Any]], node_id: str) -> dict[str, Any]:
    return next(c["credentialSubject"] for c in credentials
                if c["credentialSubject"]["id"] == node_id)


def variant(change: Any) -> list[dict[str, Any]]:
    """The hand-built chain with one change applied to a deep copy."""
    credentials = copy.deepcopy(hand_built())
    change(credentials)
    return credentials


def findings_of(credentials: list[Any]) -> list[Any]:
    return check(MaterialGraph.from_credentials(credentials))


def kinds(findings: list[Any]) -> list[MassBalanceFindingType]:
    return [f.type for f in findings]


# ---- the consistent chain


def test_hand_built_chain_has_no_findings() -> None:
    assert findings_of(hand_built()) == []


def test_hand_built_recycled_shares() -> None:
    graph = MaterialGraph.from_credentials(hand_built())
    shares = recycled_content(graph, BATTERY)
    assert set(shares) == {"Co", "Li", "Ni", "Pb"}
    cobalt = shares["Co"]
    assert (cobalt.element_mass_kg, cobalt.recycled_mass_kg) == (Decimal(20), Decimal(4))
    assert cobalt.share_pct == cobalt.min_pct == cobalt.max_pct == Decimal(20)
    assert cobalt.declared_pct == Decimal("20.0")
    assert (shares["Ni"].element_mass_kg, shares["Ni"].share_pct) == (Decimal(20), Decimal(10))
    assert (shares["Li"].element_mass_kg, shares["Li"].share_pct) == (Decimal(10), Decimal(10))
    assert shares["Pb"].share_pct is None and shares["Pb"].element_mass_kg == 0
    # Evidence: all 4 kg of recycled cobalt came from Y, through C.
    [source] = cobalt.sources
    assert (source.batch, source.process_type) == (RECYCLED, "recycling")
    assert (source.element_mass_kg, source.recycled_mass_kg) == (Decimal(4), Decimal(4))
    assert source.path == (BATTERY, CATHODE, RECYCLED)
    [through] = cobalt.via
    assert (through.batch, through.element_mass_kg, through.recycled_mass_kg) == (
        CATHODE, Decimal(20), Decimal(4))
    assert cobalt.resolved and cobalt.unresolved == ()


def test_result_does_not_depend_on_credential_order() -> None:
    credentials = hand_built()
    random.Random(7).shuffle(credentials)
    graph = MaterialGraph.from_credentials(credentials)
    assert check(graph) == []
    assert recycled_content(graph, BATTERY)["Co"].share_pct == Decimal(20)


def test_other_credentials_are_skipped() -> None:
    sample = credential("StateOfHealthCredential", {"id": BATTERY, "stateOfHealthPct": "97"})
    participant = credential("MembershipCredential", {"id": "did:web:x.example"})
    graph = MaterialGraph.from_credentials([*hand_built(), sample, participant])
    assert check(graph) == []
    assert len(graph.batches) == 5 and graph.batteries == (BATTERY,)


def test_unknown_battery_is_a_key_error() -> None:
    graph = MaterialGraph.from_credentials(hand_built())
    with pytest.raises(KeyError):
        recycled_content(graph, "did:key:z6MkNobody")
    with pytest.raises(KeyError):
        recycled_content(graph, CATHODE)  # a batch, not a battery


# ---- one failing input per finding type


def test_output_above_inputs_is_mass_not_conserved() -> None:
    found = findings_of(variant(lambda c: subject(c, CATHODE).update(batchMassKg="450")))
    assert kinds(found) == [T.MASS_NOT_CONSERVED]
    [finding] = found
    assert finding.nodes == (CATHODE, REFINED, RECYCLED)
    assert finding.evidence["batch_mass_kg"] == Decimal(450)
    assert finding.evidence["input_mass_kg"] == Decimal(440)
    assert "exceeds" in finding.message


def test_loss_beyond_tolerance_is_mass_not_conserved() -> None:
    # 440 kg in, 5 % tolerance: at least 418 kg must come out; 400 does not.
    found = findings_of(variant(lambda c: subject(c, CATHODE).update(batchMassKg="400")))
    assert kinds(found) == [T.MASS_NOT_CONSERVED]
    assert found[0].evidence["minimum_output_kg"] == Decimal(418)
    # The process may declare a larger tolerance: 10 % -> at least 396 kg.
    found = findings_of(variant(lambda c: subject(c, CATHODE).update(
        batchMassKg="400", processLossTolerancePct="10")))
    assert found == []


def test_element_above_inputs_is_element_not_conserved() -> None:
    def more_cobalt(c: list[dict[str, Any]]) -> None:
        subject(c, CATHODE)["elementMass"][0]["massKg"] = "110"  # inputs supply 100

    found = findings_of(variant(more_cobalt))
    assert kinds(found) == [T.ELEMENT_NOT_CONSERVED]
    [finding] = found
    assert (finding.nodes[0], finding.element) == (CATHODE, "Co")
    assert finding.evidence["available_kg"] == Decimal(100)
    assert [i["element_mass_kg"] for i in finding.evidence["inputs"]] == [80, 20]


def test_element_lost_beyond_tolerance_is_element_not_conserved() -> None:
    def less_nickel(c: list[dict[str, Any]]) -> None:
        subject(c, CATHODE)["elementMass"][1]["massKg"] = "90"  # at least 95 of 100 must stay

    found = findings_of(variant(less_nickel))
    assert kinds(found) == [T.ELEMENT_NOT_CONSERVED]
    assert found[0].element == "Ni"


def test_element_masses_above_batch_mass() -> None:
    def heavy(c: list[dict[str, Any]]) -> None:
        subject(c, RECYCLED)["elementMass"][0].update(massKg="90", recycledMassKg="90")
        subject(c, CATHODE)["elementMass"][0]["massKg"] = "100"

    found = findings_of(variant(heavy))
    assert T.ELEMENT_NOT_CONSERVED in kinds(found)
    assert found[0].nodes == (RECYCLED,)
    assert found[0].evidence["element_mass_sum_kg"] == Decimal(120)


def test_two_consumers_claiming_more_than_a_batch_is_double_counted() -> None:
    def second_cathode(c: list[dict[str, Any]]) -> None:
        c.append(credential("MaterialBatchCredential", {
            "id": "urn:uuid:00000000-0000-4000-8000-0000000000c2",
            "material": "NMC811 cathode active material", "processType": "cathode-synthesis",
            "batchMassKg": "400", "elementMass": [],
            "input": [{"batch": REFINED, "massKg": "400"}], "productionSite": "Hamina, FI",
        }))

    found = findings_of(variant(second_cathode))
    assert kinds(found) == [T.DOUBLE_COUNTED]
    [finding] = found
    assert finding.nodes == (REFINED, CATHODE, "urn:uuid:00000000-0000-4000-8000-0000000000c2")
    assert finding.evidence["batch_mass_kg"] == Decimal(780)
    assert finding.evidence["claimed_kg"] == Decimal(790)
    assert [c["mass_kg"] for c in finding.evidence["claims"]] == [390, 400]


def test_input_without_credential_is_unknown_input() -> None:
    def unknown(c: list[dict[str, Any]]) -> None:
        subject(c, CATHODE)["input"].append({"batch": MISSING, "massKg": "10"})

    credentials = variant(unknown)
    found = findings_of(credentials)
    assert kinds(found) == [T.UNKNOWN_INPUT]
    assert found[0].nodes == (MISSING, CATHODE)
    # The battery's share can no longer be traced: 0 % traced, bracket 0..100 %.
    graph = MaterialGraph.from_credentials(credentials)
    cobalt = recycled_content(graph, BATTERY)["Co"]
    assert cobalt.unresolved == (CATHODE,)
    assert (cobalt.share_pct, cobalt.min_pct, cobalt.max_pct) == (0, 0, 100)
    assert cobalt.unresolved_mass_kg == Decimal(20)


def test_recycled_claim_above_supply_is_overstated() -> None:
    def more_recycled(c: list[dict[str, Any]]) -> None:
        subject(c, CATHODE)["elementMass"][0]["recycledMassKg"] = "25"  # Y supplies 20

    found = findings_of(variant(more_recycled))
    assert kinds(found) == [T.RECYCLED_SHARE_OVERSTATED]
    assert (found[0].nodes[0], found[0].element) == (CATHODE, "Co")
    assert found[0].evidence["supported_kg"] == Decimal(20)


def test_mined_batch_claiming_recycled_content_is_overstated() -> None:
    found = findings_of(variant(
        lambda c: subject(c, MINE_A)["elementMass"][0].update(recycledMassKg="10")))
    assert kinds(found) == [T.RECYCLED_SHARE_OVERSTATED]
    assert found[0].nodes == (MINE_A,)
    # ... and propagation does not believe it: the battery's share is unchanged.
    credentials = variant(
        lambda c: subject(c, MINE_A)["elementMass"][0].update(recycledMassKg="10"))
    graph = MaterialGraph.from_credentials(credentials)
    assert recycled_content(graph, BATTERY)["Co"].share_pct == Decimal(20)


def test_battery_declaring_more_than_traced_is_overstated() -> None:
    found = findings_of(variant(
        lambda c: subject(c, BATTERY).update(recycledContentCobaltPct="30.0")))
    assert kinds(found) == [T.RECYCLED_SHARE_OVERSTATED]
    assert (found[0].nodes, found[0].element) == ((BATTERY,), "Co")
    assert found[0].evidence["max_pct"] == Decimal(20)
    # Rounding half-up to one decimal is not an overstatement.
    assert findings_of(variant(
        lambda c: subject(c, BATTERY).update(recycledContentCobaltPct="20.05"))) == []


def test_batch_that_is_its_own_ancestor_is_a_cycle() -> None:
    def loop(c: list[dict[str, Any]]) -> None:
        subject(c, REFINED)["input"].append({"batch": CATHODE, "massKg": "10"})

    credentials = variant(loop)
    found = findings_of(credentials)
    assert kinds(found) == [T.CYCLE]
    assert set(found[0].nodes) == {REFINED, CATHODE}
    assert {(e["consumer"], e["input"], e["mass_kg"]) for e in found[0].evidence["edges"]} == {
        (REFINED, CATHODE, Decimal(10)), (CATHODE, REFINED, Decimal(390))}
    cobalt = recycled_content(MaterialGraph.from_credentials(credentials), BATTERY)["Co"]
    assert cobalt.unresolved == (CATHODE,) and cobalt.max_pct == 100


def test_self_loop_is_a_cycle() -> None:
    found = findings_of(variant(lambda c: subject(c, RECYCLED).update(
        input=[{"batch": RECYCLED, "massKg": "1"}])))
    assert T.CYCLE in kinds(found)
    cycle = next(f for f in found if f.type is T.CYCLE)
    assert cycle.nodes == (RECYCLED,)


def test_long_chain_does_not_overflow_the_stack() -> None:
    chain = [credential("RawMaterialOriginCredential", {
        "id": "urn:uuid:chain-0", "material": "ore", "processType": "mining",
        "batchMassKg": "100", "elementMass": elements(Co="10"), "countryOfOrigin": "CD",
        "productionSite": "x"})]
    for i in range(1, 5000):
        chain.append(credential("MaterialBatchCredential", {
            "id": f"urn:uuid:chain-{i}", "material": "m", "processType": "refining",
            "batchMassKg": "100", "elementMass": elements(Co="10"), "productionSite": "x",
            "input": [{"batch": f"urn:uuid:chain-{i - 1}", "massKg": "100"}]}))
    chain.append(credential("BatteryManufacturingCredential", {
        "id": BATTERY, "materialInput": [{"batch": "urn:uuid:chain-4999", "massKg": "50"}]}))
    graph = MaterialGraph.from_credentials(chain)
    assert check(graph) == []
    assert recycled_content(graph, BATTERY)["Co"].element_mass_kg == Decimal(5)


# ---- bad data: findings, never exceptions


@pytest.mark.parametrize(("node", "change"), [
    (CATHODE, lambda s: s.update(batchMassKg="heavy")),
    (CATHODE, lambda s: s.update(batchMassKg="NaN")),
    (CATHODE, lambda s: s.update(batchMassKg="1e3")),
    (CATHODE, lambda s: s.update(batchMassKg="0")),
    (CATHODE, lambda s: s.pop("batchMassKg")),
    (CATHODE, lambda s: s.update(elementMass="lots")),
    (CATHODE, lambda s: s["elementMass"].append({"element": "Co", "massKg": "1"})),
    (CATHODE, lambda s: s["elementMass"].append("Mn")),
    (CATHODE, lambda s: s["input"].append({"batch": RECYCLED})),
    (CATHODE, lambda s: s["input"].append(7)),
    (CATHODE, lambda s: s.update(input={"batch": REFINED})),
    (CATHODE, lambda s: s.update(processLossTolerancePct="150")),
    (MINE_B, lambda s: s["elementMass"][0].update(massKg=12.5)),
    (MINE_B, lambda s: s["elementMass"][0].update(recycledMassKg="-1")),
    (MINE_B, lambda s: s.pop("processType")),
    (MINE_B, lambda s: s.update(certification=[1, 2])),
    (BATTERY, lambda s: s["materialInput"][0].update(massKg="-3")),
    (BATTERY, lambda s: s.pop("materialInput")),
    (BATTERY, lambda s: s.update(recycledContentCobaltPct="lots")),
])
def test_malformed_fields_become_findings(node: str, change: Any) -> None:
    credentials = variant(lambda c: change(subject(c, node)))
    graph = MaterialGraph.from_credentials(credentials)
    found = check(graph)
    malformed = [f for f in found if f.type is T.MALFORMED_CREDENTIAL]
    assert malformed and malformed[0].nodes == (node,), found
    assert malformed[0].evidence["problems"]
    recycled_content(graph, BATTERY)  # still answers
    graph.to_rdf()


@pytest.mark.parametrize("junk", [
    None, "garbage", 17, [],
    {"type": ["VerifiableCredential", "MaterialBatchCredential"]},
    {"type": ["VerifiableCredential", "MaterialBatchCredential"], "credentialSubject": [7]},
    {"type": ["VerifiableCredential", "MaterialBatchCredential"],
     "credentialSubject": {"material": "no id"}},
])
def test_malformed_credentials_become_findings(junk: Any) -> None:
    found = findings_of([*hand_built(), junk])
    assert kinds(found) == [T.MALFORMED_CREDENTIAL]
    assert found[0].nodes == ("credential[6]",)


def test_malformed_input_batch_leaves_consumers_unresolved() -> None:
    credentials = variant(lambda c: subject(c, CATHODE).update(batchMassKg="heavy"))
    graph = MaterialGraph.from_credentials(credentials)
    assert kinds(check(graph)) == [T.MALFORMED_CREDENTIAL]
    cobalt = recycled_content(graph, BATTERY)["Co"]
    assert cobalt.unresolved == (CATHODE,)
    assert (cobalt.min_pct, cobalt.max_pct, cobalt.unresolved_mass_kg) == (0, 100, None)


def test_duplicates() -> None:
    credentials = hand_built()
    assert findings_of([*credentials, copy.deepcopy(credentials[0])]) == []
    other = copy.deepcopy(credentials[0])
    other["credentialSubject"]["batchMassKg"] = "999"
    found = findings_of([*credentials, other])
    assert kinds(found) == [T.DUPLICATE_NODE] and found[0].nodes == (MINE_A,)


def test_findings_serialise_to_json() -> None:
    found = findings_of(variant(lambda c: subject(c, CATHODE).update(batchMassKg="450")))
    out = found[0].to_json()
    assert out["type"] == "mass-not-conserved"
    assert out["evidence"]["batch_mass_kg"] == "450"
    assert out["evidence"]["inputs"][0] == {"batch": REFINED, "mass_kg": "390"}


# ---- EU minimums (Regulation (EU) 2023/1542 Art. 8)


def hand_built_shares() -> dict[str, RecycledShare]:
    return recycled_content(MaterialGraph.from_credentials(hand_built()), BATTERY)


def statuses(verdicts: list[Any]) -> dict[str, VerdictStatus]:
    return {v.element: v.status for v in verdicts}


def test_before_2031_nothing_is_required_but_shares_are_reported() -> None:
    for day in (date(2027, 2, 18), date(2031, 8, 17)):
        verdicts = compare_with_minimums(hand_built_shares(), on=day)
        assert set(statuses(verdicts).values()) == {VerdictStatus.NOT_YET_REQUIRED}
        cobalt = verdicts[0]
        assert (cobalt.element, cobalt.share_pct, cobalt.minimum_pct) == ("Co", 20, None)
        assert (cobalt.applies_from, cobalt.upcoming_minimum_pct) == (date(2031, 8, 18), 16)
        assert all(v.passed for v in verdicts)


def test_from_2031_co_20_li_10_ni_10_pass() -> None:
    verdicts = compare_with_minimums(hand_built_shares(), on=date(2031, 8, 18))
    assert statuses(verdicts) == {"Co": VerdictStatus.PASS, "Li": VerdictStatus.PASS,
                                  "Ni": VerdictStatus.PASS, "Pb": VerdictStatus.NOT_APPLICABLE}
    assert [v.minimum_pct for v in verdicts] == [16, 6, 6, 85]
    assert verdicts[0].evidence is not None and verdicts[0].evidence.sources[0].batch == RECYCLED


def test_from_2036_the_same_battery_fails() -> None:
    verdicts = compare_with_minimums(hand_built_shares(), on=date(2036, 8, 18))
    assert statuses(verdicts) == {"Co": VerdictStatus.FAIL, "Li": VerdictStatus.FAIL,
                                  "Ni": VerdictStatus.FAIL, "Pb": VerdictStatus.NOT_APPLICABLE}
    assert [v.minimum_pct for v in verdicts] == [26, 12, 15, 85]
    assert not verdicts[0].passed
    # The day before, the 2031 minimums still apply.
    assert statuses(compare_with_minimums(hand_built_shares(), on=date(2036, 8, 17)))["Co"] \
        is VerdictStatus.PASS


def share(element: str, pct: str, low: str | None = None, high: str | None = None
          ) -> RecycledShare:
    value = Decimal(pct)
    return RecycledShare(element, Decimal(100), value, value,
                         Decimal(low) if low else value, Decimal(high) if high else value)


def test_minimums_pass_and_fail_at_the_boundaries() -> None:
    shares = {"Co": share("Co", "26"), "Li": share("Li", "11.99"), "Ni": share("Ni", "15"),
              "Pb": share("Pb", "85")}
    assert statuses(compare_with_minimums(shares, on=date(2036, 8, 18))) == {
        "Co": VerdictStatus.PASS, "Li": VerdictStatus.FAIL, "Ni": VerdictStatus.PASS,
        "Pb": VerdictStatus.PASS}
    shares["Pb"] = share("Pb", "84.9")
    assert statuses(compare_with_minimums(shares, on=date(2031, 8, 18)))["Pb"] \
        is VerdictStatus.FAIL


def test_unresolved_provenance_is_indeterminate_unless_the_bracket_decides() -> None:
    shares = {"Co": share("Co", "10", "10", "40"),   # could be 10..40 % against 16
              "Li": share("Li", "7", "7", "30"),     # even the lowest passes 6
              "Ni": share("Ni", "1", "1", "5")}      # even the highest fails 6
    assert statuses(compare_with_minimums(shares, on=date(2031, 8, 18))) == {
        "Co": VerdictStatus.INDETERMINATE, "Li": VerdictStatus.PASS,
        "Ni": VerdictStatus.FAIL, "Pb": VerdictStatus.NOT_APPLICABLE}


# ---- RDF view


def test_rdf_view_answers_sparql() -> None:
    graph = MaterialGraph.from_credentials(hand_built())
    rdf = graph.rdf
    assert graph.rdf is rdf  # built once
    prefix = f"PREFIX bp: <{BP}>\n"
    batches = rdf.query(prefix + "SELECT (COUNT(?b) AS ?n) WHERE { ?b a bp:MaterialBatch }")
    assert [int(row[0]) for row in batches] == [5]
    [(mass,)] = rdf.query(prefix + f"""SELECT ?m WHERE {{
        <{CATHODE}> bp:input [ bp:batch <{RECYCLED}> ; bp:massKg ?m ] }}""")
    assert mass.datatype == URIRef(XSD_DECIMAL) and mass.toPython() == Decimal(50)
    [(used,)] = rdf.query(prefix + f"""SELECT ?m WHERE {{
        <{BATTERY}> a bp:Battery ; bp:materialInput [ bp:batch <{CATHODE}> ; bp:massKg ?m ] }}""")
    assert used.toPython() == Decimal(86)
    rows = rdf.query(prefix + f"""SELECT ?e ?m ?r WHERE {{
        <{RECYCLED}> bp:elementMass [ bp:element ?e ; bp:massKg ?m ; bp:recycledMassKg ?r ] }}""")
    assert sorted((str(e), m.toPython(), r.toPython()) for e, m, r in rows) == [
        ("Co", 40, 40), ("Li", 10, 10), ("Ni", 20, 20)]
    upstream = rdf.query(prefix + """SELECT DISTINCT ?b WHERE {
        ?battery bp:materialInput/bp:batch/(bp:input/bp:batch)* ?b }""",
                         initBindings={"battery": URIRef(BATTERY)})
    assert {str(row[0]) for row in upstream} == {MINE_A, MINE_B, REFINED, RECYCLED, CATHODE}
    certifications = rdf.query(prefix + f"SELECT ?c WHERE {{ <{MINE_B}> bp:certification ?c }}")
    assert sorted(str(row[0]) for row in certifications) == ["IRMA 75", "ISO 14001"]


# ---- synthetic supply chains


def test_synthetic_10k_batches_have_no_findings() -> None:
    credentials = synthetic_batch_graph(10_000, random.Random(2031))
    graph = MaterialGraph.from_credentials(credentials)
    assert len(graph.batches) == 10_000 and len(graph.batteries) == 1_000
    assert check(graph) == []
    cobalt = [recycled_content(graph, b)["Co"] for b in graph.batteries]
    assert all(s.resolved and s.share_pct is not None for s in cobalt)
    # A spread around the minimums, as synthetic-ranges.json asks for.
    assert min(s.share_pct for s in cobalt) < 16 < max(s.share_pct for s in cobalt)  # type: ignore[operator]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_synthetic_graphs_are_consistent(seed: int) -> None:
    credentials = synthetic_batch_graph(400, random.Random(seed), batteries=60)
    graph = MaterialGraph.from_credentials(credentials)
    assert check(graph) == []
    assert len(graph.batches) == 400 and len(graph.batteries) == 60
    processes = {graph.nodes[b].process_type for b in graph.batches}
    assert processes == {"mining", "refining", "recycling", "precursor-synthesis",
                         "cathode-synthesis"}
    for battery in graph.batteries:
        shares = recycled_content(graph, battery)
        for element in ("Co", "Li", "Ni"):
            result = shares[element]
            assert result.element_mass_kg > 0
            traced = sum((s.recycled_mass_kg for s in result.sources), Decimal(0))
            assert abs(traced - result.recycled_mass_kg) < Decimal("1e-20")
            assert result.declared_pct is not None and result.share_pct is not None
            assert Decimal(0) <= result.share_pct - result.declared_pct < Decimal("0.1")
        assert shares["Pb"].share_pct is None


def test_synthetic_generator_is_reproducible() -> None:
    first = synthetic_batch_graph(100, random.Random(5))
    assert first == synthetic_batch_graph(100, random.Random(5))
    assert first != synthetic_batch_graph(100, random.Random(6))
    with pytest.raises(ValueError):
        synthetic_batch_graph(5, random.Random(5))
