"""The W3C VC-API for the node's own keys, so standard VC tooling can talk to the node.

- ``POST /credentials/issue`` ``{credential, options}`` → 201 ``{verifiableCredential}``;
  operator key required (issuing speaks in the node's name). ``options.type`` /
  ``options.cryptosuite`` pick the proof: ``DataIntegrityProof`` with ``eddsa-rdfc-2022``
  (default) or ``eddsa-jcs-2022``, or ``Ed25519Signature2020`` for VCDM 1.1 peers. VCDM 1.1
  input still gets a Data Integrity proof (the library adds the data-integrity context).
  Battery passport credential types are held to their SHACL shapes before signing.
- ``POST /credentials/verify`` ``{verifiableCredential, options:{checks}}`` and
  ``POST /presentations/verify`` ``{verifiablePresentation, options:{challenge, domain}}``:
  open to anyone. 200 with ``{verified: true, problems: [], problemDetails: []}`` when
  everything checks out; otherwise **400**, the one failure status the VC-API defines for
  ``/credentials/verify`` and the one the W3C test suites accept everywhere (they take 400
  or 422). The 400 body is problem JSON (``type …#verification-failed``) that still carries
  the VC-API result members (``verified: false``, ``problemDetails``) and our typed
  ``problems``, so either kind of client reads it. We use 400 for presentations too, though
  the VC-API draft answers a completed-but-failed presentation check with 200: a client that
  looks only at the status must never take a forged presentation for a good one.

Bodies are checked strictly: an unknown field or option is a 400 naming it rather than
silently ignored (an ignored ``mandatoryPointers`` or ``checks: ["credentialStatus"]`` would
promise something the node did not do).
"""

from __future__ import annotations

import logging
import secrets
import threading
from collections.abc import Iterator
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, field_validator

from connector.app import IDENTITY, VERIFIER
from connector.management.auth import require_operator
from connector.ops.metrics import count_issued
from connector.problems import (
    PROBLEM_BASE,
    FieldError,
    ProblemDetails,
    ProblemError,
    invalid_request,
    parse_body,
    read_json_object,
)
from connector.status_lists import STATUS_LISTS
from credentials import (
    ED25519_2020,
    JCS,
    RDFC,
    CredentialsError,
    Ed25519Key,
    Problem,
    ProblemType,
    VerificationResult,
    VerifyOptions,
    issue_credential,
)
from credentials.errors import MalformedDocument
from credentials.model import types_of
from credentials.passport.chain import KNOWN_CREDENTIAL_TYPES
from credentials.passport.issuing import issue_passport_credential
from credentials.passport.shapes import ShapeViolation

ISSUE_PATH = "/credentials/issue"
VERIFY_CREDENTIAL_PATH = "/credentials/verify"
VERIFY_PRESENTATION_PATH = "/presentations/verify"

DATA_INTEGRITY_PROOF = "DataIntegrityProof"
CRYPTOSUITES = (RDFC, JCS)
#: ``options.checks`` this node performs; validity periods are always checked as well.
SUPPORTED_CHECKS = ("proof",)
ENVELOPED_VC = "EnvelopedVerifiableCredential"
_JWT_DATA_URL = "data:application/vc+jwt,"

#: Standard problem types (VCDM 2.0 §7.1, Data Integrity §2.5) where one fits ours exactly.
_STANDARD_PROBLEM_TYPES = {
    ProblemType.BAD_SIGNATURE: "https://w3id.org/security#PROOF_VERIFICATION_ERROR",
    ProblemType.CHALLENGE_MISMATCH: "https://w3id.org/security#INVALID_CHALLENGE_ERROR",
    ProblemType.DOMAIN_MISMATCH: "https://w3id.org/security#INVALID_DOMAIN_ERROR",
    ProblemType.MALFORMED: "https://www.w3.org/TR/vc-data-model#MALFORMED_VALUE_ERROR",
}

logger = logging.getLogger(__name__)

#: The credentials library was written for one thread at a time; signing runs off the event
#: loop (RDFC and SHACL take milliseconds to tens of them) but never concurrently.
_SIGNING_LOCK = threading.Lock()


# --- request bodies ---------------------------------------------------------------------------


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IssueOptions(_Body):
    type: str | None = None
    cryptosuite: str | None = None
    #: Accepted as the VC-API defines it (a reference for the caller); not used yet.
    credential_id: str | None = Field(default=None, alias="credentialId")


class IssueRequest(_Body):
    credential: dict[str, Any]
    options: IssueOptions = IssueOptions()  # frozen, so one shared default is safe


class VerifyCredentialOptions(_Body):
    checks: list[str] = Field(default_factory=lambda: ["proof"])

    @field_validator("checks")
    @classmethod
    def _supported(cls, checks: list[str]) -> list[str]:
        unsupported = [c for c in checks if c not in SUPPORTED_CHECKS]
        if unsupported:
            raise ValueError(
                f"unsupported check(s) {', '.join(map(repr, unsupported))}; this node checks"
                f" {', '.join(SUPPORTED_CHECKS)} (and validity periods, always)"
            )
        return checks


class VerifyCredentialRequest(_Body):
    verifiable_credential: Any = Field(alias="verifiableCredential")
    options: VerifyCredentialOptions = VerifyCredentialOptions()

    @field_validator("verifiable_credential")
    @classmethod
    def _credential_or_jwt(cls, value: Any) -> Any:
        if isinstance(value, dict) or (isinstance(value, str) and value.strip()):
            return value
        raise ValueError(
            "must be a credential (a JSON object) or a compact JWT (a non-empty string)"
        )


class VerifyPresentationOptions(_Body):
    challenge: str | None = None
    domain: str | None = None
    return_presentation: bool = Field(default=False, alias="returnPresentation")


class VerifyPresentationRequest(_Body):
    verifiable_presentation: dict[str, Any] = Field(alias="verifiablePresentation")
    options: VerifyPresentationOptions = VerifyPresentationOptions()


# --- issuing ----------------------------------------------------------------------------------


def suite_for(options: IssueOptions) -> str:
    """Map VC-API ``options.type`` / ``options.cryptosuite`` to one of our suites."""
    if options.type in (None, DATA_INTEGRITY_PROOF):
        suite = options.cryptosuite or RDFC
        if suite not in CRYPTOSUITES:
            raise invalid_request([FieldError(
                field="options.cryptosuite",
                message=f"unsupported cryptosuite {suite!r}; use {' or '.join(CRYPTOSUITES)}",
            )])
        return suite
    if options.type == ED25519_2020:
        if options.cryptosuite is not None:
            raise invalid_request([FieldError(
                field="options.cryptosuite",
                message=f"only DataIntegrityProof takes a cryptosuite, not {ED25519_2020}",
            )])
        return ED25519_2020
    raise invalid_request([FieldError(
        field="options.type",
        message=f"unsupported proof type {options.type!r}; use {DATA_INTEGRITY_PROOF} or"
        f" {ED25519_2020}",
    )])


def sign(credential: dict[str, Any], key: Ed25519Key, suite: str) -> dict[str, Any]:
    """Sign with ``key``; passport credential types go through their shape check first."""
    with _SIGNING_LOCK:
        if KNOWN_CREDENTIAL_TYPES.intersection(types_of(credential)):
            signed = issue_passport_credential(credential, key, suite=suite)
        else:
            signed = issue_credential(credential, key, suite=suite)
    if not isinstance(signed, dict):  # only the JWT format returns a string
        raise TypeError(f"suite {suite} produced a {type(signed).__name__}, not a credential")
    return signed


def refused(exc: CredentialsError) -> ProblemError:
    """400 for a credential the node will not sign, with every reason typed."""
    if isinstance(exc, ShapeViolation):
        problems = [Problem(ProblemType.MALFORMED, v.message, v.path) for v in exc.violations]
    else:
        problems = [exc.problem]
    return ProblemError(ProblemDetails(
        400, "credential-refused", "The credential cannot be issued", str(exc),
        {"problems": [p.to_json() for p in problems]},
    ))


@require_operator
async def issue(request: web.Request) -> web.Response:
    body = parse_body(IssueRequest, await read_json_object(request))
    suite = suite_for(body.options)
    key = request.config_dict[IDENTITY].signing_key
    lists = request.config_dict[STATUS_LISTS]
    try:
        # Every credential the node issues can be revoked and suspended: its status entries
        # are allocated in the transaction that commits only once it is signed.
        signed = await lists.issue_with_status(body.credential,
                                               lambda doc: sign(doc, key, suite))
    except CredentialsError as exc:
        raise refused(exc) from None
    except Exception:
        # The library choked on this document instead of refusing it with a typed error: a
        # bug to fix there, but still this credential's fault, so a 400, never a signature.
        error_id = _log_library_failure("issuing", request)
        raise refused(MalformedDocument(
            f"the credential could not be processed (error id {error_id})")) from None
    count_issued(request.app, "vc-api")  # for /metrics (connector.ops)
    return web.json_response({"verifiableCredential": signed}, status=201)


# --- verifying --------------------------------------------------------------------------------


def _flat_problems(result: VerificationResult, prefix: str = "") -> Iterator[tuple[Problem, str]]:
    """Every problem of a result and of the credentials inside it, with where it was found."""
    for problem in result.problems:
        yield problem, ".".join(p for p in (prefix, problem.path or "") if p)
    for index, credential in enumerate(result.credentials):
        yield from _flat_problems(credential, f"{prefix}verifiableCredential[{index}]")


def problem_details(result: VerificationResult) -> list[dict[str, str]]:
    """The VC-API ``problemDetails`` list (RFC 9457 items) for ``result``."""
    details = []
    for problem, where in _flat_problems(result):
        details.append({
            "type": _STANDARD_PROBLEM_TYPES.get(problem.type, PROBLEM_BASE + str(problem.type)),
            "title": str(problem.type),
            "detail": f"{problem.message} (at {where})" if where else problem.message,
        })
    return details


def verification_response(
    result: VerificationResult, extra: dict[str, Any] | None = None
) -> web.Response:
    """200 with the result when verified; a 400 problem carrying the same result otherwise."""
    body = result.to_json()
    body["problemDetails"] = problem_details(result)
    body.update(extra or {})
    if result.verified:
        return web.json_response(body)
    summary = "; ".join(f"{p.type}{f' at {where}' if where else ''}: {p.message}"
                        for p, where in _flat_problems(result))
    return ProblemDetails(
        400, "verification-failed", f"The {result.kind} did not verify", summary, body
    ).response()


def _unwrap_enveloped(credential: Any) -> Any:
    """An EnvelopedVerifiableCredential (VCDM 2.0) carries a JWT in a data: URL; open it."""
    if isinstance(credential, dict):
        types = credential.get("type")
        item_id = credential.get("id")
        if (ENVELOPED_VC in (types if isinstance(types, list) else [types])
                and isinstance(item_id, str) and item_id.startswith(_JWT_DATA_URL)):
            return item_id[len(_JWT_DATA_URL):]
    return credential


def _log_library_failure(action: str, request: web.Request) -> str:
    error_id = secrets.token_hex(8)
    logger.exception("credentials library failed %s (error id %s, %s %s)", action, error_id,
                     request.method, request.path)
    return error_id


def _unprocessable(
    kind: Literal["credential", "presentation"], request: web.Request
) -> VerificationResult:
    """A failed result for a document the verifier crashed on: never ``verified: true``."""
    error_id = _log_library_failure(f"verifying a {kind}", request)
    result = VerificationResult(kind, "ldp")
    result.add(ProblemType.MALFORMED,
               f"the {kind} could not be processed (error id {error_id})")
    return result


async def verify_credential(request: web.Request) -> web.Response:
    body = parse_body(VerifyCredentialRequest, await read_json_object(request))
    credential = _unwrap_enveloped(body.verifiable_credential)
    try:
        result = await request.config_dict[VERIFIER].verify_credential(credential)
    except Exception:
        result = _unprocessable("credential", request)
    return verification_response(result)


async def verify_presentation(request: web.Request) -> web.Response:
    body = parse_body(VerifyPresentationRequest, await read_json_object(request))
    options = VerifyOptions(challenge=body.options.challenge, domain=body.options.domain)
    verifier = request.config_dict[VERIFIER]
    try:
        result = await verifier.verify_presentation(body.verifiable_presentation, options)
    except Exception:
        result = _unprocessable("presentation", request)
    extra = ({"verifiablePresentation": body.verifiable_presentation}
             if body.options.return_presentation else None)
    return verification_response(result, extra)


def add_routes(app: web.Application) -> None:
    app.router.add_post(ISSUE_PATH, issue)
    app.router.add_post(VERIFY_CREDENTIAL_PATH, verify_credential)
    app.router.add_post(VERIFY_PRESENTATION_PATH, verify_presentation)
