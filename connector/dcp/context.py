"""The facts a provider evaluates a consumer's request against, proven the DCP way.

One place builds the policy engine's ``EvaluationContext`` for a protocol request: the
authenticated caller, the node's clock, the credentials the caller proved (``RoleProofs``,
only the types the policies at hand can use) and the node's trust registry. The catalog, the
negotiation decision and ``explain`` all use it, so "why was I refused?" has one answer.

Usage purpose: a Catena-X ``UsagePurpose`` constraint is a commitment the consumer makes by
requesting the offer that names it (Tractus-X evaluates it as "always true, for strictness");
here the purpose the consumer commits to is the offer's own, recorded in the agreement it
signs. ``for_offer`` therefore evaluates each offer with the purpose it names.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from aiohttp import web

from connector.dcp.presentations import RoleProof, RoleProofs
from connector.participant_auth import VerifiedCaller
from credentials.errors import CredentialsError
from credentials.jcs import canonical_json
from credentials.model import issuer_id, types_of
from policies import EvaluationContext
from policies.credential_needs import credential_types_of_all, usage_purposes
from policies.trust import IssuerTrust, TrustList

ROLE_PROOFS = web.AppKey("role_proofs", RoleProofs)
"""The node's presentation fetcher and cache (installed by ``role_proofs_ctx``)."""


async def role_proofs_ctx(app: web.Application) -> AsyncIterator[None]:
    """Install ``RoleProofs`` once the identity, HTTP client and verifier are up."""
    from connector.app import CONFIG, HTTP_CLIENT, IDENTITY, VERIFIER
    from connector.dsp.negotiation_service import dsp_state

    config = app[CONFIG]
    app[ROLE_PROOFS] = RoleProofs(
        key=app[IDENTITY].signing_key, session=app[HTTP_CLIENT], verifier=app[VERIFIER],
        clock=dsp_state(app).settings.clock, allow_http_loopback=config.is_local,
        max_age_s=config.presentation_cache_s)
    yield


def node_trust(app: web.Application | Mapping[Any, Any]) -> IssuerTrust:
    """The node's trust registry as the engine reads it (empty when none is installed)."""
    from connector.trust_registry import TRUST

    trust = app.get(TRUST)
    return trust.current if trust is not None else TrustList()


async def requester_context(
    app: web.Application | Mapping[Any, Any], caller: VerifiedCaller | None, did: str,
    policies: Iterable[Any], now: datetime,
) -> tuple[EvaluationContext, RoleProof]:
    """The context for ``did``'s request concerning ``policies`` (offers), and its proof."""
    proof = RoleProof()
    proofs = app.get(ROLE_PROOFS)
    if caller is not None and proofs is not None:
        proof = await proofs.prove(caller, credential_types_of_all(policies))
    context = EvaluationContext(participant_did=did, now=now, credentials=proof.credentials,
                                trust=node_trust(app))
    return context, proof


async def explained_context(
    app: web.Application | Mapping[Any, Any], did: str, policies: Iterable[Any], now: datetime,
) -> tuple[EvaluationContext, RoleProof | None]:
    """The context ``explain`` evaluates for ``did``: the credentials it proved to this node
    lately (``RoleProofs.recent``), or none — and then the proof is ``None``."""
    proofs = app.get(ROLE_PROOFS)
    proof = (await proofs.recent(did, credential_types_of_all(policies))
             if proofs is not None else None)
    context = EvaluationContext(participant_did=did, now=now,
                                credentials=proof.credentials if proof else (),
                                trust=node_trust(app))
    return context, proof


def for_offer(context: EvaluationContext, offer: Mapping[str, Any]) -> EvaluationContext:
    """``context`` with the usage purpose ``offer`` names (see the module docstring)."""
    purposes = usage_purposes(offer)
    if not purposes or context.purpose is not None:
        return context
    return dataclasses.replace(context, purpose=purposes[0])


def credential_digest(document: Mapping[str, Any]) -> str:
    """``sha256:<hex>`` of the JCS form: what the audit log and the evidence record name."""
    return "sha256:" + hashlib.sha256(canonical_json(dict(document))).hexdigest()


def evidence_of(credentials: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """What a decision relied on, small enough for the audit log: per credential its id,
    digest, types, issuer and status entries (the policy monitor re-checks those)."""
    found = []
    for document in credentials:
        try:
            issuer = issuer_id(dict(document))
        except CredentialsError:
            issuer = None
        status = document.get("credentialStatus")
        found.append({
            "id": document.get("id"),
            "digest": credential_digest(document),
            "types": [t for t in types_of(dict(document)) if t != "VerifiableCredential"],
            "issuer": issuer,
            "credentialStatus": status if isinstance(status, list | dict) else None,
        })
    return found


__all__ = ["ROLE_PROOFS", "credential_digest", "evidence_of", "explained_context", "for_offer",
           "node_trust",
           "requester_context", "role_proofs_ctx"]
