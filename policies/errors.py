"""Typed parse errors, each naming the JSON path of the offending part.

Why typed and located: an operator who publishes a policy, or a consumer asking why an offer
is refused, needs to know *which* constraint is wrong and *how* (a typo in a left operand is
a different fix from a date without a timezone). The engine never ignores what it does not
understand; it raises one of these instead.
"""

from __future__ import annotations


class PolicyError(ValueError):
    """A policy the engine cannot evaluate; ``path`` says where (``permission[0].constraint[1]``).

    ``code`` is the stable string a ``Decision`` carries for it.
    """

    code = "malformed-policy"

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message


class MalformedPolicy(PolicyError):
    """Not ODRL of the expected shape: wrong JSON types, missing keys, contradictory keys."""


class InvalidRightOperand(MalformedPolicy):
    """A right operand of the wrong type or form for its left operand (``"P1Y"``, ``[]``)."""


class UnknownContext(MalformedPolicy):
    """A ``@context`` URL that is not bundled: its terms cannot be known without fetching it,
    and the engine never fetches."""


class UnsupportedPolicy(PolicyError):
    """Well-formed, but uses something the engine does not evaluate, so it refuses it."""

    code = "unsupported"


class UnknownLeftOperand(UnsupportedPolicy):
    """A left operand the engine has no semantics for (Tractus-X would pass it; we refuse)."""


class UnknownOperator(UnsupportedPolicy):
    """An operator that is not one of ODRL's ten the engine implements, or one the left operand
    does not take (``participantDid gt …``)."""


class UnknownAction(UnsupportedPolicy):
    """An action the engine cannot grant, forbid or hand to the caller as a duty."""


class UnsupportedFeature(UnsupportedPolicy):
    """An ODRL feature outside the engine's subset (refinements, remedies, conflict, …)."""


__all__ = [
    "InvalidRightOperand",
    "MalformedPolicy",
    "PolicyError",
    "UnknownAction",
    "UnknownContext",
    "UnknownLeftOperand",
    "UnknownOperator",
    "UnsupportedFeature",
    "UnsupportedPolicy",
]
