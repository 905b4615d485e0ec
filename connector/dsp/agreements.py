"""Is an agreement still in force? One answer for the transfer service and the data plane.

An agreement ends when the provider terminates it (``AgreementTermination``), when its
``not_after`` passes, or when its policy's usage window closes (``policy_gate.is_in_force``:
``elapsedTime P7D``, Catena-X ``DataUsageEndDurationDays``…) or its ``odrl:count`` of uses is
spent (``AgreementUsage``, counted by the data plane), all judged at the caller's clock.
"""

from __future__ import annotations

from datetime import datetime

from connector.policy_gate import is_in_force
from connector.store import AgreementRecord, Reader


async def why_agreement_ended(
    reader: Reader, agreement: AgreementRecord, now: datetime
) -> str | None:
    """Why ``agreement`` no longer allows access at ``now``; ``None`` while it does."""
    termination = await reader.get_agreement_termination(agreement.id)
    if termination is not None:
        reason = f": {termination.reason}" if termination.reason else ""
        return f"the provider terminated the agreement{reason}"
    if agreement.not_after is not None and agreement.not_after <= now:
        return "the agreement has expired"
    usage = await reader.get_agreement_usage(agreement.id)
    uses = usage.access_count if usage is not None else 0
    if not is_in_force(agreement.agreement, agreement.signed_at, now, access_count=uses):
        if uses and is_in_force(agreement.agreement, agreement.signed_at, now):
            return f"the agreement's permitted number of uses is spent ({uses} so far)"
        return "the agreement is no longer in force (its usage window has closed)"
    return None


__all__ = ["why_agreement_ended"]
