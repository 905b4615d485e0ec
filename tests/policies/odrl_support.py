"""Shared helpers for the policy engine tests: reference files, contexts, credentials."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from policies import EvaluationContext, TrustList

SHARED = (Path(__file__).resolve().parents[2] / ".." / "shared" / "dsp").resolve()
CATENAX = SHARED / "catenax"
needs_shared = pytest.mark.skipif(
    not CATENAX.is_dir(), reason=f"Catena-X reference files not found at {CATENAX}"
)

RECYCLER = "did:web:recycler.example"
STRANGER = "did:web:stranger.example"
ISSUER = "did:web:issuer.example"
ROGUE = "did:web:rogue.example"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
CX_CONTEXT = ["https://w3id.org/dspace/2025/1/odrl-profile.jsonld",
              "https://w3id.org/catenax/2025/9/policy/context.jsonld"]
TRUST = TrustList.of({"*": [ISSUER]})


def load(path: Path) -> Any:
    return json.loads(path.read_text("utf-8"))


def c(left: Any, op: Any, right: Any) -> dict[str, Any]:
    return {"leftOperand": left, "operator": op, "rightOperand": right}


def policy(*constraints: dict[str, Any], context: Any = None, **extra: Any) -> dict[str, Any]:
    rule: dict[str, Any] = {"action": "use"}
    if constraints:
        rule["constraint"] = list(constraints)
    body: dict[str, Any] = {"@id": "urn:uuid:p1", "@type": "Offer", "permission": [rule]}
    if context is not None:
        body = {"@context": context, **body}
    return {**body, **extra}


def credential(kind: str, subject: dict[str, Any] | None = None, *, holder: str = RECYCLER,
               issuer: str = ISSUER, until: str = "2030-01-01T00:00:00Z",
               since: str = "2025-01-01T00:00:00Z") -> dict[str, Any]:
    """A verified credential as ``credentials.Verifier`` hands it out (VCDM 1.1 shape)."""
    return {
        "@context": ["https://www.w3.org/2018/credentials/v1",
                     "https://w3id.org/catenax/credentials/v1.0.0"],
        "id": f"urn:uuid:{kind}",
        "type": ["VerifiableCredential", kind],
        "issuer": issuer,
        "issuanceDate": since,
        "expirationDate": until,
        "credentialSubject": {"id": holder, **(subject or {})},
    }


def membership(**kw: Any) -> dict[str, Any]:
    return credential("MembershipCredential", {"holderIdentifier": "BPNL00000000RCYC"}, **kw)


def governance(version: str = "1.0", **kw: Any) -> dict[str, Any]:
    return credential("DataExchangeGovernanceCredential",
                      {"holderIdentifier": "BPNL00000000RCYC", "group": "UseCaseFramework",
                       "useCase": "DataExchangeGovernance", "contractVersion": version}, **kw)


def dismantler(activity: Any = "vehicleDismantle", brands: Any = ("BMW", "Alpina"),
               **kw: Any) -> dict[str, Any]:
    return credential("DismantlerCredential", {"holderIdentifier": "BPNL00000000RCYC",
                                               "activityType": activity,
                                               "allowedVehicleBrands": list(brands)}, **kw)


def ctx(did: str = RECYCLER, *, now: datetime = NOW, **kw: Any) -> EvaluationContext:
    kw.setdefault("trust", TRUST)
    return EvaluationContext(participant_did=did, now=now, **kw)
