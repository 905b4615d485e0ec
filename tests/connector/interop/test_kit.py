"""The harness's scenario table is the kit's: every id, role, polarity, seed and sequence."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connector.interop.kit import SCENARIOS, KitConfig, parse_properties
from connector.interop.registry import all_checks, select

KIT_JSON = (Path(__file__).resolve().parents[3] / ".." / "shared" / "dsp" / "tck"
            / "dsp-tck-2025-1-scenarios.json").resolve()
_NAMES = {"ContractRequestMessage": "REQ", "ContractOfferMessage": "OFFER",
          "ContractNegotiationEventMessage:accepted": "ACCEPT",
          "ContractAgreementMessage": "AGREE", "ContractAgreementVerificationMessage": "VERIFY",
          "ContractVerificationMessage": "VERIFY",
          "ContractNegotiationEventMessage:finalized": "FINAL",
          "ContractNegotiationTerminationMessage": "TERM", "TransferRequestMessage": "TREQ",
          "TransferStartMessage": "START", "TransferSuspensionMessage": "SUSP",
          "TransferCompletionMessage": "COMPL", "TransferTerminationMessage": "TTERM",
          "CatalogRequestMessage": "CATALOG", "CatalogDatasetMessage": "DATASET",
          "MetadataRequest": "METADATA", "Signal to start negotiation": "SIGNAL",
          "Signal to start transfer": "SIGNAL"}


def _steps(sequence: list[dict[str, str]]) -> tuple[str, ...]:
    steps: list[str] = []
    for step in sequence:
        if step["kind"] != "request":
            if step["message"] == "4xx ERROR":
                steps[-1] += "!"
            continue
        steps.append((">" if step["from"] == "TCK" else "<") + _NAMES[step["message"]])
    return tuple(steps)


@pytest.mark.skipif(not KIT_JSON.is_file(), reason=f"kit scenario list not at {KIT_JSON}")
def test_the_table_is_the_kits_scenario_list() -> None:
    kit = {test["id"]: test for test in json.loads(KIT_JSON.read_text())["tests"]}
    ours = {scenario.id: scenario for scenario in SCENARIOS}
    assert ours.keys() == kit.keys()
    for sid, test in kit.items():
        scenario = ours[sid]
        assert scenario.role == test["cut_role"], sid
        assert scenario.negative == test["negative"], sid
        assert dict(scenario.seeds) == test["seed_from_sample_properties"], sid
        assert scenario.title == test["title"], sid
        expected = _steps(test["sequence"])
        if sid == "CN:01-03":  # the kit's code stops at FINALIZED (the note in the list)
            expected = expected[:-1]
        assert scenario.steps == expected, sid


def test_every_scenario_is_a_check_under_its_id() -> None:
    ids = {check.id for check in all_checks()}
    assert {scenario.id for scenario in SCENARIOS} <= ids
    assert len(SCENARIOS) == 67
    negative = [s for s in SCENARIOS if s.negative and s.group not in ("CAT", "MET")]
    assert len(negative) == 22


def test_selection_by_id_and_glob() -> None:
    assert [c.id for c in select(["CN:01-01"])] == ["CN:01-01"]
    assert {c.id for c in select(["TP_C:03-*"])} == {f"TP_C:03-0{n}" for n in range(1, 7)}
    chosen = select(["CN:*"], ["CN:03-*"])
    assert chosen and all(c.id.startswith("CN:0") and not c.id.startswith("CN:03") for c in chosen)
    assert all(c.group == "IOP" for c in select(["IOP"]))
    with pytest.raises(ValueError, match="no check matches"):
        select(["XX:*"])


def test_the_kits_properties_configure_seeds_and_wait() -> None:
    props = parse_properties("# comment\nCN_01_01_DATASETID=OTHER\n"
                             "dataspacetck.dsp.default.wait = 2500\nTP_01_01_AGREEMENTID: A1\n")
    kit = KitConfig(props)
    cn, tp = (next(s for s in SCENARIOS if s.id == sid) for sid in ("CN:01-01", "TP:01-01"))
    assert kit.seed(cn, "datasetid") == "OTHER"
    assert kit.seed(cn, "offerid") == "CD123:ACN0101:456"  # its own sample seed
    assert kit.seed(tp, "agreementid") == "A1"
    assert KitConfig().seed(tp, "format") == "HttpData-PULL"
    assert kit.wait_s(10) == 2.5
