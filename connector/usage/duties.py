"""When an agreement's ``delete`` duty falls due: the ``policies`` engine's answer, read once.

The engine returns duties only with a grant (``Decision.duties`` of an allowed decision), and
only while the permission holds: after a seven-day window closes it grants nothing and says
nothing about duties. The due time itself does not depend on the moment of evaluation
(``elapsedTime gteq P7D`` is due at agreement start + 7 days), so we ask at ``now`` and, when
the window has closed by then, again at the agreement's start — where a concluded agreement
granted use. Evaluated in policy-monitor mode: claims proven at negotiation are taken as held.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from policies import EvaluationContext
from policies.evaluate import agreement_context, evaluate
from policies.namespaces import DELETE


def delete_due_at(agreement_policy: Mapping[str, Any], participant_did: str,
                  agreement_start: datetime, now: datetime | None = None) -> datetime | None:
    """The earliest due time of a ``delete`` duty ``participant_did`` has under the agreement;
    ``None`` when it has none (or none with a computable time): the data may be kept."""
    moments = [m for m in (now, agreement_start) if m is not None]
    for moment in moments:
        context = EvaluationContext(participant_did=participant_did, now=moment,
                                    agreement_start=agreement_start, monitor=True)
        decision = evaluate(agreement_policy, context,
                            message_context=agreement_context(agreement_policy))
        if not decision.allowed:
            continue
        due = [duty.due_at for duty in decision.duties
               if duty.action == DELETE and duty.due_at is not None]
        return min(due) if due else None
    return None


__all__ = ["delete_due_at"]
