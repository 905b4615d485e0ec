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
    "VerificationResult",
    "Verifier",
    "VerifyOptions",
    "create_presentation",
    "issue_credential",
    "issue_jwt_credential",
    "key_from_seed",
    "mint_battery_did",
    "resolve_did_key",
    "sign_presentation",
    "verify_credential",
    "verify_presentation",
]
