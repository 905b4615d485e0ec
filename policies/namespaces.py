"""The IRIs the policy engine knows, in one place.

Why a module of constants: a left operand is identified by its IRI, never by how a document
happened to spell it (``Membership``, ``cx-policy:Membership`` and the full IRI are the same
operand), so every comparison in the engine is against one of these strings.
"""

from __future__ import annotations

ODRL = "http://www.w3.org/ns/odrl/2/"
#: Catena-X policy namespace of the 2025-09 profile (context ``CX_POLICY_CONTEXT``).
CX_POLICY = "https://w3id.org/catenax/2025/9/policy/"
#: The namespace Catena-X used before 2025-09 (profile 2405, context ``CX_LEGACY_CONTEXT``).
#: Tractus-X still evaluates its terms; so do we, and ``catenax_usage_problems`` flags them.
CX_POLICY_LEGACY = "https://w3id.org/catenax/policy/"
CX_CREDENTIALS = "https://w3id.org/catenax/credentials/"
EDC = "https://w3id.org/edc/v0.0.1/ns/"
DSPACE = "https://w3id.org/dspace/2025/1/"
#: Our own policy terms (the participant allow-list operand).
BPC_POLICY = "https://w3id.org/battery-passport-connector/policy#"

CX_POLICY_CONTEXT = "https://w3id.org/catenax/2025/9/policy/context.jsonld"
CX_ODRL_CONTEXT = "https://w3id.org/catenax/2025/9/policy/odrl.jsonld"
CX_LEGACY_CONTEXT = "https://w3id.org/tractusx/policy/v1.0.0"
DSP_CONTEXT = "https://w3id.org/dspace/2025/1/context.jsonld"
DSP_ODRL_PROFILE = "https://w3id.org/dspace/2025/1/odrl-profile.jsonld"
ODRL_CONTEXT = "http://www.w3.org/ns/odrl.jsonld"
ODRL_CONTEXT_HTTPS = "https://www.w3.org/ns/odrl.jsonld"

# ODRL terms the engine evaluates
USE = ODRL + "use"
DELETE = ODRL + "delete"
DATE_TIME = ODRL + "dateTime"
ELAPSED_TIME = ODRL + "elapsedTime"
COUNT = ODRL + "count"
#: Catena-X's action for catalog visibility (access policies).
CX_ACCESS = CX_POLICY + "access"

PARTICIPANT_DID = BPC_POLICY + "participantDid"
IN_FORCE_DATE = EDC + "inForceDate"

__all__ = [
    "BPC_POLICY",
    "COUNT",
    "CX_ACCESS",
    "CX_CREDENTIALS",
    "CX_LEGACY_CONTEXT",
    "CX_ODRL_CONTEXT",
    "CX_POLICY",
    "CX_POLICY_CONTEXT",
    "CX_POLICY_LEGACY",
    "DATE_TIME",
    "DELETE",
    "DSPACE",
    "DSP_CONTEXT",
    "DSP_ODRL_PROFILE",
    "EDC",
    "ELAPSED_TIME",
    "IN_FORCE_DATE",
    "ODRL",
    "ODRL_CONTEXT",
    "ODRL_CONTEXT_HTTPS",
    "PARTICIPANT_DID",
    "USE",
]
