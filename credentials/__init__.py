"""Credentials library: DIDs, keys, verifiable credentials and presentations.

A library, not a server: the connector node wires it to HTTP. It never imports ``connector``.
"""

from credentials.data_integrity import ED25519_2020, JCS, RDFC, SUITES
from credentials.did_key import key_from_seed, mint_battery_did, resolve_did_key
from credentials.errors import CredentialsError, Problem, ProblemType
from credentials.holder import create_presentation, sign_presentation
from credentials.issuer import ISSUE_FORMATS, JWT, issue_credential, issue_jwt_credential
from credentials.keys import Ed25519Key, PublicKey
from credentials.resolver import DIDResolver, HttpDIDFetcher
from credentials.status_list import (
    StatusChecker,
    StatusList,
    StatusListFull,
    StatusListIssuer,
    attach_status,
    issue_status_list_credential,
)
from credentials.trust import (
    TrustDecision,
    TrustListRejected,
    TrustRegistry,
    check_presentation_trust,
    trust_list_credential,
)
from credentials.verifier import (
    VerificationResult,
    Verifier,
    VerifyOptions,
    verify_credential,
    verify_presentation,
)

__all__ = [
    "ED25519_2020",
    "ISSUE_FORMATS",
    "JCS",
    "JWT",
    "RDFC",
    "SUITES",
    "CredentialsError",
    "DIDResolver",
    "Ed25519Key",
    "HttpDIDFetcher",
    "Problem",
    "ProblemType",
    "PublicKey",
    "StatusChecker",
    "StatusList",
    "StatusListFull",
    "StatusListIssuer",
    "TrustDecision",
    "TrustListRejected",
    "TrustRegistry",
    "VerificationResult",
    "Verifier",
    "VerifyOptions",
    "attach_status",
    "check_presentation_trust",
    "create_presentation",
    "issue_credential",
    "issue_jwt_credential",
    "issue_status_list_credential",
    "key_from_seed",
    "mint_battery_did",
    "resolve_did_key",
    "sign_presentation",
    "trust_list_credential",
    "verify_credential",
    "verify_presentation",
]
