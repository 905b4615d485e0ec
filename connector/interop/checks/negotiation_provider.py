"""The kit's CN scenarios: provider negotiation (the harness is the consumer)."""

from connector.interop.checks.scenario_checks import register_group

CHECKS = register_group("CN")
