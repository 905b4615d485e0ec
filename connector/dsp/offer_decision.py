"""The provider's default negotiation decision: the offer as published, and its policy holds.

The catalog already hides offers a participant cannot satisfy, but a consumer can request any
offer id it knows, and it sends its own copy of the offer. So the decision re-checks:

1. the offer id is one this node published, for the requested target, on a live asset;
2. the consumer's copy has the same rules as the published one (otherwise a consumer could
   drop the seven-day limit from its copy and get an agreement without it — the agreement is
   built from the requested offer);
3. the published policy allows this consumer now (``PolicyGate.evaluate``: allow-list, time
   windows, the credentials it proved — ``connector.dcp`` fetches them from its credential
   service with the access token its request carried — trusted per the node's registry;
   unknown constraints fail closed), naming the failing constraint when it does not.

An allowing decision carries the evidence (the credentials' digests and status entries), which
the negotiation audits and keeps with the agreement for the policy monitor.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from connector.dataplane.provider import battery_of
from connector.dcp.context import evidence_of, for_offer, requester_context
from connector.dsp.messages import MessageOffer
from connector.dsp.negotiation_service import Decision
from connector.dsp.process import TerminationKind
from connector.participant_auth import VerifiedCaller
from connector.plugins.manager import access_restriction
from connector.policy_gate import PolicyGate
from connector.store import Store

_IGNORED = ("@context", "target")


def _rules(offer: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in offer.items() if key not in _IGNORED}


def same_rules(requested: MessageOffer, published: dict[str, Any]) -> bool:
    """Whether ``requested`` is the published offer (up to ``@context`` and ``target``), both
    normalised through the message model so equivalent JSON spellings compare equal."""
    try:
        normalised = MessageOffer.model_validate({**published, "target": requested.target})
    except ValueError:
        return False
    return _rules(normalised.to_json()) == _rules(requested.to_json())


class GatedOffers:
    """``PolicyDecision`` backed by the published offers and the node's ``PolicyGate``."""

    def __init__(self, store: Store, gate: PolicyGate, clock: Callable[[], datetime],
                 facts: Mapping[Any, Any] | None = None) -> None:
        """``facts``: where role proofs and trust come from (the app; none: no credentials)."""
        self._store = store
        self._gate = gate
        self._clock = clock
        self._facts: Mapping[Any, Any] = facts if facts is not None else {}

    async def decide(self, offer: MessageOffer, consumer_did: str, *,
                     caller: VerifiedCaller | None = None) -> Decision:
        async with self._store.read() as reader:
            record = await reader.get_offer(offer.id)
            asset = await reader.get_asset(record.asset_id) if record is not None else None
        if record is None:
            return Decision(False, detail=f"offer {offer.id} is not one this node offered")
        if record.asset_id != offer.target:
            return Decision(False, failed_constraint="target",
                            detail=f"offer {offer.id} is not offered for {offer.target}")
        if asset is None or asset.properties.get("withdrawnAt"):
            return Decision(False, failed_constraint="target",
                            detail=f"dataset {offer.target} is no longer offered")
        restricted = access_restriction(self._facts, battery_of(asset), asset.access_level)
        if restricted is not None:
            return Decision(False, failed_constraint="restricted", detail=restricted)
        if not same_rules(offer, record.offer):
            return Decision(False, failed_constraint="offer",
                            detail=f"the requested offer differs from offer {offer.id} as "
                                   "published; request it unchanged")
        context, proof = await requester_context(self._facts, caller, consumer_did,
                                                 [record.offer], self._clock())
        verdict = self._gate.evaluate(record.offer, for_offer(context, record.offer))
        if verdict.allowed:
            return Decision(True, evidence=tuple(evidence_of(proof.credentials)))
        constraint = verdict.failed_constraint
        if constraint and verdict.left_operand:
            constraint = f"{constraint} ({verdict.left_operand})"
        detail = verdict.reason + (f"; missing: {verdict.missing}" if verdict.missing else "")
        detail += proof.note()
        return Decision(False, reason_kind=TerminationKind.POLICY,
                        failed_constraint=constraint, detail=detail)


__all__ = ["GatedOffers", "same_rules"]
