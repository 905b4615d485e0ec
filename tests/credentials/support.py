"""Setup shared by the credential tests: fixed keys and clock, sample credentials, helpers.

A plain module: the test files import it by name (pytest puts this folder on ``sys.path``).
"""

from __future__ import annotations

import base64
import json
import random
from datetime import UTC, datetime
from typing import Any

from connector.samples import manufacturing_credential
from credentials import (
    JCS,
    RDFC,
    ProblemType,
    VerificationResult,
    VerifyOptions,
    key_from_seed,
    verify_credential,
)
from vocab import BATTERY_CONTEXT_V1, CREDENTIALS_V1

NOW = datetime(2026, 3, 1, tzinfo=UTC)
ISSUER = key_from_seed(bytes([1] * 32))
BATTERY = key_from_seed(bytes([2] * 32))
STRANGER = key_from_seed(bytes([3] * 32))

JWT = "jwt"
LDP_SUITES = (RDFC, JCS)
FORMATS = (RDFC, JCS, JWT)


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def credential_v2(**extra: Any) -> dict[str, Any]:
    """The VCDM 2.0 sample battery credential (ISSUER about BATTERY, issued NOW), plus ``extra``."""
    doc = manufacturing_credential(
        BATTERY.controller, ISSUER.controller, rng=random.Random(1), issued=NOW
    )
    doc.update(extra)
    return doc


def credential_v1(**extra: Any) -> dict[str, Any]:
    """The same sample as VCDM 1.1 (``issuanceDate`` instead of ``validFrom``), plus ``extra``."""
    doc = credential_v2()
    doc["@context"] = [CREDENTIALS_V1, BATTERY_CONTEXT_V1]
    del doc["validFrom"]
    doc["issuanceDate"] = stamp(NOW)
    doc.update(extra)
    return doc


def b64url_encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


async def verify(document: Any, options: VerifyOptions | None = None) -> VerificationResult:
    """verify_credential at NOW (unless ``options`` say otherwise), checking that the result
    encodes as JSON and that it is verified exactly when it lists no problems."""
    result = await verify_credential(document, options or VerifyOptions(now=NOW))
    json.dumps(result.to_json())
    assert result.verified == (not result.problems)
    return result


def problem_types(result: Any) -> list[ProblemType]:
    """The problems' types in the order reported (repeats kept)."""
    return [p.type for p in result.problems]


def problem_type_set(result: Any) -> set[ProblemType]:
    """The problems' types, ignoring order and repeats."""
    return {p.type for p in result.problems}
