"""The policy monitor: ends running agreements whose evidence no longer holds.

A provider agrees because the consumer proved a role ("certified dismantler") with credentials
it verified at the time (``connector.dsp.offer_decision``; the evidence — id, digest, issuer,
status entries — is kept with the agreement). When the certifier later revokes or suspends that
certificate, new negotiations fail at once (the proof is re-checked), but a running agreement
would live on for its whole seven days. So this watch re-reads, every ``watch_interval_s``, the
status of each live agreement's evidence (through the node's status checker and its cache of
the issuers' lists) and terminates the agreement when one is revoked or suspended: tokens
revoked, transfers TERMINATED, the consumer told, the reason audited.

A status list that cannot be fetched does not end an agreement (a certifier's outage must not
cut every recycler off); it is logged, and the next round tries again. New negotiations still
fail closed on it (``status_unavailable``).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from aiohttp import web

from connector.background import periodic
from connector.store import AgreementEvidence, AlreadyExists, Store
from credentials.status_list import REVOCATION, StatusChecker
from credentials.verifier import ProblemType, Verifier

log = logging.getLogger(__name__)

_PAGE = 200


def _revocation(evidence: AgreementEvidence, entry: dict[str, Any],
                problem_types: set[str]) -> str:
    kinds = ", ".join(entry.get("types") or ["credential"])
    what = "revoked" if "revoked" in problem_types else "suspended"
    return (f"the consumer's {kinds} {entry.get('id') or entry.get('digest')} "
            f"(issuer {entry.get('issuer')}) was {what}; the agreement relied on it")


async def _ended(store: Store, agreement_id: str, now: datetime) -> bool:
    from connector.dsp.agreements import why_agreement_ended

    async with store.read() as reader:
        agreement = await reader.get_agreement(agreement_id)
        return agreement is None or await why_agreement_ended(reader, agreement, now) is not None


async def check_evidence(app: web.Application) -> int:
    """One round: terminate the live agreements whose evidence was revoked; how many."""
    from connector.app import IDENTITY, STORE, VERIFIER
    from connector.dataplane.routes import data_plane_of
    from connector.dsp.negotiation_service import dsp_state

    store, verifier = app[STORE], app[VERIFIER]
    checker = verifier.status_checker
    if not isinstance(checker, StatusChecker):
        return 0
    now = dsp_state(app).settings.clock()
    ended = 0
    after: str | None = None
    while True:
        async with store.read() as reader:
            page = await reader.list_agreement_evidence(after=after, limit=_PAGE)
        for evidence in page:
            if await _ended(store, evidence.agreement_id, now):  # cheap: skip the status check
                continue
            reason = await _revoked_reason(evidence, checker, verifier, now)
            if reason is None:
                continue
            try:
                await data_plane_of(app).terminate_agreement(
                    evidence.agreement_id, actor=app[IDENTITY].did, reason=reason)
                ended += 1
            except (LookupError, AlreadyExists) as exc:  # ended meanwhile, or not ours
                log.info("agreement %s not terminated: %s", evidence.agreement_id, exc)
        if len(page) < _PAGE:
            return ended
        after = page[-1].agreement_id


async def _revoked_reason(evidence: AgreementEvidence, checker: StatusChecker,
                          verifier: Verifier, now: datetime) -> str | None:
    for entry in evidence.evidence.get("credentials") or []:
        status, issuer = entry.get("credentialStatus"), entry.get("issuer")
        if not status or not isinstance(issuer, str):
            continue
        statuses = await checker.entry_statuses(
            {"issuer": issuer, "credentialStatus": status}, issuer=issuer, now=now,
            resolver=verifier.resolver)
        found: set[str] = set()
        for item in statuses:
            if item.problem is not None:
                if item.problem.type == ProblemType.STATUS_UNAVAILABLE:
                    log.warning("agreement %s: status of %s unavailable: %s",
                                evidence.agreement_id, entry.get("id"), item.problem.message)
                continue
            if item.is_set:
                found.add("revoked" if item.purpose == REVOCATION else "suspended")
        if found:
            return _revocation(evidence, entry, found)
    return None


def add_policy_monitor(app: web.Application, interval_s: float) -> None:
    """Run ``check_evidence`` every ``interval_s`` while the node runs."""
    app.cleanup_ctx.append(periodic("policy-monitor", interval_s, check_evidence,
                                    "terminated %d agreements whose evidence was revoked"))


__all__ = ["add_policy_monitor", "check_evidence"]
