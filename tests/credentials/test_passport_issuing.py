"""Passport credentials are checked against the SHACL shapes before they are signed."""

from __future__ import annotations

import random

import pytest

from connector.samples import manufacturing_credential, state_of_health
from credentials import JCS, JWT, RDFC, key_from_seed, verify_credential
from credentials.passport.issuing import issue_passport_credential
from credentials.passport.shapes import ShapeViolation

ISSUER = key_from_seed(bytes(range(32)))
BATTERY = key_from_seed(bytes(range(1, 33))).controller


@pytest.mark.parametrize("suite", [RDFC, JCS, JWT])
async def test_a_valid_entry_is_issued_and_verifies(suite: str) -> None:
    unsigned = manufacturing_credential(BATTERY, ISSUER.controller, rng=random.Random(3))
    secured = issue_passport_credential(unsigned, ISSUER, suite=suite)
    assert (await verify_credential(secured)).verified


@pytest.mark.parametrize("suite", [RDFC, JCS, JWT])
def test_an_out_of_range_value_is_refused_before_signing(suite: str) -> None:
    unsigned = state_of_health(BATTERY, ISSUER.controller, rng=random.Random(4))
    unsigned["credentialSubject"]["stateOfHealthPct"] = "120.0"
    with pytest.raises(ShapeViolation) as refused:
        issue_passport_credential(unsigned, ISSUER, suite=suite)
    assert refused.value.problem.path == "credentialSubject.stateOfHealthPct"
    assert "stateOfHealthPct" in str(refused.value)


def test_a_missing_required_attribute_is_named() -> None:
    unsigned = manufacturing_credential(BATTERY, ISSUER.controller, rng=random.Random(5))
    del unsigned["credentialSubject"]["batteryChemistry"]
    with pytest.raises(ShapeViolation) as refused:
        issue_passport_credential(unsigned, ISSUER)
    assert any(path == "credentialSubject.batteryChemistry"
               for path, _ in refused.value.violations)
