"""CAT: the kit's catalog scenarios (seeded dataset in the catalog, by id, unknown id)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from connector.dsp.schemas import schema_errors
from connector.interop.checks.tck_engine import message
from connector.interop.context import Context
from connector.interop.kit import SCENARIOS, Scenario
from connector.interop.model import Check, CheckFailed, CheckRun
from connector.interop.registry import register


def _datasets(catalog: dict[str, Any]) -> list[dict[str, Any]]:
    found = [d for d in catalog.get("dataset", []) if isinstance(d, dict)]
    for nested in catalog.get("catalog", []) or []:
        if isinstance(nested, dict):
            found.extend(_datasets(nested))
    return found


async def catalog_request(ctx: Context, scenario: Scenario) -> str:
    dataset = ctx.kit.seed(scenario, "datasetid")
    did = await ctx.did_of(ctx.provider)
    url = ctx.provider.dsp("catalog/request")
    status, body, _ = await ctx.http.call("POST", url, body=message("CatalogRequestMessage"),
                                          audience=did)
    if status != 200 or not isinstance(body, dict):
        raise CheckFailed(f"the catalog request was answered {status}: {str(body)[:300]}")
    errors = schema_errors(body, "Catalog")
    if errors:
        raise CheckFailed(f"the catalog breaks the official schema: {errors[:3]}")
    ids = [d.get("@id") for d in _datasets(body)]
    if dataset not in ids:
        raise CheckFailed(f"seeded dataset {dataset!r} is not in the catalog (it has {ids[:10]})")
    return f"catalog with {len(ids)} dataset(s), {dataset} among them"


async def dataset_request(ctx: Context, scenario: Scenario) -> str:
    dataset = ctx.kit.seed(scenario, "datasetid")
    did = await ctx.did_of(ctx.provider)
    url = ctx.provider.dsp(f"catalog/datasets/{quote(dataset, safe=':')}")
    status, body, _ = await ctx.http.call("GET", url, audience=did)
    if scenario.negative:
        if not 400 <= status < 500:
            raise CheckFailed(f"unknown dataset {dataset!r} was answered {status}, not 4xx")
        if not isinstance(body, dict) or body.get("@type") != "CatalogError":
            raise CheckFailed(f"the answer is not a CatalogError: {str(body)[:300]}")
        return f"{status} CatalogError for unknown dataset {dataset}"
    if status != 200 or not isinstance(body, dict):
        raise CheckFailed(f"dataset {dataset!r} was answered {status}: {str(body)[:300]}")
    errors = schema_errors(body, "Dataset")
    if errors:
        raise CheckFailed(f"the dataset breaks the official schema: {errors[:3]}")
    if body.get("@id") != dataset:
        raise CheckFailed(f"asked for {dataset!r}, got dataset {body.get('@id')!r}")
    return f"dataset {dataset} with {len(body.get('hasPolicy', []))} offer(s)"


def _runner(scenario: Scenario) -> CheckRun:
    async def run(ctx: Context) -> str:
        if scenario.steps == (">CATALOG",):
            return await catalog_request(ctx, scenario)
        return await dataset_request(ctx, scenario)

    return run


CHECKS = [register(Check(s.id, s.title, s.group, frozenset({"provider"}), _runner(s),
                         s.negative)) for s in SCENARIOS if s.group == "CAT"]
