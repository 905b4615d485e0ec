"""``parse_policy`` remembers parsed policies by JSON text — and never lets the memory change
an answer: the context and ``require_action`` are part of the key, failures are not kept."""

from __future__ import annotations

import pytest

from policies.errors import PolicyError
from policies.namespaces import CX_POLICY_CONTEXT, DSP_ODRL_PROFILE
from policies.odrl import parse_policy

CX = {"@type": "Set", "permission": [{"action": "use", "constraint": [
    {"leftOperand": "FrameworkAgreement", "operator": "eq",
     "rightOperand": "DataExchangeGovernance:1.0"}]}]}


def test_the_same_policy_is_parsed_once_and_the_context_counts() -> None:
    first = parse_policy(CX, context=[DSP_ODRL_PROFILE, CX_POLICY_CONTEXT])
    again = parse_policy(dict(reversed(list(CX.items()))),  # same JSON, other key order
                         context=(DSP_ODRL_PROFILE, CX_POLICY_CONTEXT))
    assert again is first
    with pytest.raises(PolicyError):  # without the Catena-X context the term is unknown
        parse_policy(CX)
    with pytest.raises(PolicyError):  # and a failure is not remembered as a success
        parse_policy(CX)


def test_require_action_is_part_of_the_key() -> None:
    no_action = {"@type": "Set", "permission": [{}]}
    assert parse_policy(no_action, require_action=False).permissions
    with pytest.raises(PolicyError):
        parse_policy(no_action)
