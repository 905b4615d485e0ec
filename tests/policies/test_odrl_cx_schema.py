"""``catenax_usage_problems(strict=True)`` agrees with the official Catena-X 2025-09 schema.

The schema files (shared/dsp/catenax/policy-2025-9, Tractus-X's own) are the reference: for
usage policies built from the constraints the engine evaluates, "no problems in strict mode"
must mean "valid against policy-schema.json", and the engine's defaults are checked the same way.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from odrl_support import CATENAX, CX_CONTEXT, SHARED, c, needs_shared

from policies import catenax_usage_problems
from policies.defaults import DataCategory, default_policy


@cache
def validator() -> Any:
    from jsonschema import Draft201909Validator
    from referencing import Registry, Resource

    resources = []
    files = [*(CATENAX / "policy-2025-9").rglob("*.json"),
             *(SHARED / "dsp-2025-1").rglob("*-schema.json")]
    for path in files:
        # the DSP transfer schemas' "#definitions/" quirk (shared/dsp/README.md)
        document = json.loads(path.read_text("utf-8").replace("#definitions/", "#/definitions/"))
        if isinstance(document, dict) and "$id" in document:
            resources.append((document["$id"], Resource.from_contents(document)))
    schema = json.loads((CATENAX / "policy-2025-9" / "schema" / "policy-schema.json")
                        .read_text("utf-8"))
    return Draft201909Validator(schema, registry=Registry().with_resources(resources))


def schema_valid(document: dict[str, Any]) -> bool:
    return validator().is_valid(document)


def usage(*constraints: Any, permissions: int = 1) -> dict[str, Any]:
    rule = {"action": "use", "constraint": list(constraints)}
    return {"@context": CX_CONTEXT, "@id": "urn:uuid:u1", "@type": "Set",
            "permission": [rule] * permissions}


@needs_shared
@pytest.mark.parametrize("category", [c for c in DataCategory if c is not DataCategory.PUBLIC])
def test_defaults_against_the_schema(category: DataCategory) -> None:
    document = default_policy(category, f"urn:policy:{category}")
    assert document is not None
    strict = [p for p in catenax_usage_problems(document, strict=True) if p.schema]
    assert (not strict) == schema_valid(document), [str(p) for p in strict]
    assert catenax_usage_problems(document) == []  # the mandatory rules always hold


_atoms = st.sampled_from([
    c("FrameworkAgreement", "eq", "DataExchangeGovernance:1.0"),
    c("FrameworkAgreement", "eq", "traceability"),
    c("UsagePurpose", "isAnyOf", ["cx.circular.dpp:1"]),
    c("UsagePurpose", "isAnyOf", ["cx.circular.dpp:1", "cx.core.legalRequirementForThirdparty:1"]),
    c("UsagePurpose", "eq", "cx.circular.dpp:1"),
    c("Membership", "eq", "active"),
    c("ContractReference", "isAllOf", ["frame-2024"]),
    c("DataUsageEndDurationDays", "eq", "30"),
    c("DataUsageEndDate", "eq", "2027-01-01T00:00:00Z"),
    c("DataUsageEndDefinition", "eq", "cx.dataUsageEnd.unlimited:1"),
    c("BusinessPartnerGroup", "isAnyOf", ["recyclers"]),
    c("bpc-policy:participantDid", "isAnyOf", ["did:web:a.example"]),
    c("odrl:elapsedTime", "lteq", "P7D"),
])


@needs_shared
@settings(max_examples=150, deadline=None)
@given(members=st.lists(_atoms, min_size=1, max_size=5, unique_by=json.dumps),
       wrapped=st.booleans(), permissions=st.sampled_from([1, 1, 1, 2]))
def test_strict_problems_agree_with_the_schema(members: list[Any], wrapped: bool,
                                              permissions: int) -> None:
    document = usage(*([{"and": members}] if wrapped else members), permissions=permissions)
    strict = [p for p in catenax_usage_problems(document, strict=True) if p.schema]
    assert (not strict) == schema_valid(document), ([str(p) for p in strict], document)
