"""The kit's CN_C scenarios: consumer negotiation (the harness is the provider, via the trigger)."""

from connector.interop.checks.scenario_checks import register_group

CHECKS = register_group("CN_C")
