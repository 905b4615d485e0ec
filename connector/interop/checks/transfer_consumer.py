"""The kit's TP_C scenarios: consumer transfer process (the harness is the provider;
the trigger starts it)."""

from connector.interop.checks.scenario_checks import register_group

CHECKS = register_group("TP_C")
