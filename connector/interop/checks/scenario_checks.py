"""Registers the kit's scenarios of one group as checks that replay them (``tck_engine``)."""

from __future__ import annotations

from connector.interop.checks.tck_engine import run_scenario
from connector.interop.context import Context
from connector.interop.kit import SCENARIOS, Scenario
from connector.interop.model import Check, CheckRun
from connector.interop.registry import register


def _runner(scenario: Scenario) -> CheckRun:
    async def run(ctx: Context) -> str:
        return await run_scenario(ctx, scenario)

    return run


def register_group(group: str) -> list[Check]:
    return [register(Check(s.id, s.title, s.group, frozenset({s.role}), _runner(s), s.negative))
            for s in SCENARIOS if s.group == group]
