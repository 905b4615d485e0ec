"""The kit's TP scenarios: provider transfer process (the harness is the consumer)."""

from connector.interop.checks.scenario_checks import register_group

CHECKS = register_group("TP")
