"""Verifying credentials and presentations, reporting every finding as a typed problem.

A verifier's caller needs to know *why* something failed — an expired state-of-health
credential is handled differently from a forged one — so nothing here returns a bare bool or
lets an exception escape for bad input. Checks that do not depend on each other all run, so
one answer lists every problem found.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal, Protocol

from credentials.data_integrity import suite_of_proof, verify_proof
from credentials.errors import CredentialsError, MalformedDocument, Problem, ProblemType
from credentials.jose import credential_from_claims, unverified_header, verify_jws
from credentials.jsonld import check_terms
from credentials.model import check_credential_shape, contexts_of, issuer_id, types_of
from credentials.resolver import DIDResolver
from credentials.timestamps import now_utc, parse_datetime

ENVELOPED_VC = "EnvelopedVerifiableCredential"
_JWT_DATA_URL = "data:application/vc+jwt,"


@dataclass(slots=True)
class VerificationResult:
    """What a verifier found. ``verified`` is True only when ``problems`` is empty."""

    kind: Literal["credential", "presentation"]
    format: Literal["ldp", "jwt"]
    problems: list[Problem] = field(default_factory=list)
    document: dict[str, Any] | None = None
    suite: str | None = None
    issuer: str | None = None
    verification_method: str | None = None
    credentials: list[VerificationResult] = field(default_factory=list)
    #: True only when a status checker read every revocation/suspension entry the credential
    #: carries. False for credentials without ``credentialStatus`` too: "not revoked" is only
    #: ever claimed when it was looked up.
    status_checked: bool = False
    #: Findings that do not fail verification (e.g. status not checked): shown, never fatal.
    warnings: list[Problem] = field(default_factory=list)

    @property
    def verified(self) -> bool:
        return not self.problems and all(c.verified for c in self.credentials)

    def add(self, problem_type: ProblemType, message: str, path: str | None = None) -> None:
        self.problems.append(Problem(problem_type, message, path))

    def warn(self, problem_type: ProblemType, message: str, path: str | None = None) -> None:
        self.warnings.append(Problem(problem_type, message, path))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "verified": self.verified,
            "kind": self.kind,
            "format": self.format,
            "suite": self.suite,
            "issuer": self.issuer,
            "verificationMethod": self.verification_method,
            "problems": [p.to_json() for p in self.problems],
            "statusChecked": self.status_checked,
            "warnings": [p.to_json() for p in self.warnings],
        }
        if self.kind == "presentation":
            out["credentials"] = [c.to_json() for c in self.credentials]
        return out


@dataclass(frozen=True, slots=True)
class VerifyOptions:
    """What the verifier expects; ``now`` is injectable so expiry is testable."""

    #: None means the purpose that fits: assertionMethod for credentials, authentication for
    #: presentations.
    proof_purpose: str | None = None
    challenge: str | None = None
    domain: str | None = None
    now: datetime | None = None
    #: The signing key must belong to the credential's issuer (or the presentation's holder).
    #: Only switched off to check bare proofs such as the W3C vectors, whose issuer is an
    #: https URL that does not control the did:key that signed them.
    require_issuer_binding: bool = True


class CredentialStatusChecker(Protocol):
    """What the verifier needs from a status checker (``credentials.status_list.StatusChecker``).

    A protocol rather than an import so the verifier does not depend on the status module
    (which itself uses a ``Verifier`` to check the status list credentials).
    """

    async def check_status(
        self,
        credential: dict[str, Any],
        result: VerificationResult,
        options: VerifyOptions,
        *,
        verifier: Verifier,
    ) -> None:
        """Add REVOKED / SUSPENDED / STATUS_UNAVAILABLE problems (or warnings) to ``result``
        and set ``result.status_checked``."""
        ...


class Verifier:
    def __init__(
        self,
        resolver: DIDResolver | None = None,
        *,
        status_checker: CredentialStatusChecker | None = None,
    ) -> None:
        self.resolver = resolver or DIDResolver()
        #: Lives with the verifier (not in ``VerifyOptions``) because it holds the status list
        #: cache, and so that credentials inside presentations are checked the same way.
        self.status_checker = status_checker

    async def verify_credential(
        self, credential: dict[str, Any] | str, options: VerifyOptions | None = None
    ) -> VerificationResult:
        options = options or VerifyOptions()
        if options.proof_purpose is None:
            options = replace(options, proof_purpose="assertionMethod")
        if isinstance(credential, str):
            return await self._verify_jwt_credential(credential, options)
        result = VerificationResult("credential", "ldp", document=credential
                                    if isinstance(credential, dict) else None)
        try:
            check_credential_shape(credential)
            result.issuer = issuer_id(credential)
        except CredentialsError as exc:
            result.problems.append(exc.problem)
            return result
        _check_validity_window(credential, options, result)
        await self._verify_ldp_proofs(credential, options, result, controller=result.issuer)
        await self._check_status(credential, options, result)
        return result

    async def _check_status(
        self, credential: dict[str, Any], options: VerifyOptions, result: VerificationResult
    ) -> None:
        if "credentialStatus" not in credential:
            return
        if self.status_checker is None:
            result.warn(ProblemType.STATUS_NOT_CHECKED,
                        "the credential has a credentialStatus but this verifier has no status "
                        "checker: revocation and suspension were not checked",
                        "credentialStatus")
            return
        if result.problems:
            # Only a credential that verified gets its status list fetched: otherwise anyone
            # could make the verifier fetch URLs of their choosing with a forged credential.
            result.warn(ProblemType.STATUS_NOT_CHECKED,
                        "status not checked: the credential failed other checks",
                        "credentialStatus")
            return
        await self.status_checker.check_status(credential, result, options, verifier=self)

    async def verify_presentation(
        self, presentation: dict[str, Any] | Any, options: VerifyOptions | None = None
    ) -> VerificationResult:
        """Check the holder's proof (authentication, challenge, domain) and every credential."""
        options = options or VerifyOptions()
        if options.proof_purpose is None:
            options = replace(options, proof_purpose="authentication")
        result = VerificationResult("presentation", "ldp")
        if not isinstance(presentation, dict):
            result.add(ProblemType.MALFORMED, "a presentation must be a JSON object")
            return result
        result.document = presentation
        try:
            contexts_of(presentation)
            if "VerifiablePresentation" not in types_of(presentation):
                raise MalformedDocument("type must include VerifiablePresentation", path="type")
        except CredentialsError as exc:
            result.problems.append(exc.problem)
            return result
        holder = presentation.get("holder")
        holder_id = holder.get("id") if isinstance(holder, dict) else holder
        result.issuer = holder_id if isinstance(holder_id, str) else None
        if options.challenge is None:
            result.add(ProblemType.CHALLENGE_MISMATCH,
                       "a presentation is only verified against a challenge the verifier chose")
        await self._verify_ldp_proofs(presentation, options, result, controller=result.issuer)
        embedded = presentation.get("verifiableCredential", [])
        for item in embedded if isinstance(embedded, list) else [embedded]:
            vc_options = VerifyOptions(now=options.now,
                                       require_issuer_binding=options.require_issuer_binding)
            if isinstance(item, dict) and ENVELOPED_VC in (item.get("type") or []):
                item_id = item.get("id", "")
                if isinstance(item_id, str) and item_id.startswith(_JWT_DATA_URL):
                    item = item_id[len(_JWT_DATA_URL):]
            result.credentials.append(await self.verify_credential(item, vc_options))
        return result

    async def _verify_ldp_proofs(
        self,
        document: dict[str, Any],
        options: VerifyOptions,
        result: VerificationResult,
        *,
        controller: str | None,
    ) -> None:
        proofs = document.get("proof")
        proofs = proofs if isinstance(proofs, list) else [] if proofs is None else [proofs]
        if not proofs:
            result.add(ProblemType.MALFORMED, "the document carries no proof", "proof")
            return
        unsecured = {k: v for k, v in document.items() if k != "proof"}
        for proof in proofs:
            if not isinstance(proof, dict):
                result.add(ProblemType.MALFORMED, "proof must be a JSON object", "proof")
                continue
            signed = unsecured
            previous = proof.get("previousProof")
            if previous is not None:
                # A proof chain: this proof also signed the proofs it names (vc-data-integrity
                # §4.3), so they are part of what it is checked against.
                wanted = [previous] if isinstance(previous, str) else previous
                if not isinstance(wanted, list) or not all(isinstance(w, str) for w in wanted):
                    result.add(ProblemType.MALFORMED,
                               "previousProof must be a proof id or a list of them",
                               "proof.previousProof")
                    continue
                matching = [p for p in proofs if isinstance(p, dict) and p.get("id") in wanted]
                if len(matching) != len(wanted):
                    result.add(ProblemType.MALFORMED,
                               "previousProof names a proof the document does not carry",
                               "proof.previousProof")
                    continue
                signed = {**unsecured, "proof": matching}
            await self._verify_one_proof(signed, proof, options, result, controller)

    async def _verify_one_proof(
        self,
        unsecured: dict[str, Any],
        proof: dict[str, Any],
        options: VerifyOptions,
        result: VerificationResult,
        controller: str | None,
    ) -> None:
        try:
            result.suite = suite_of_proof(proof)
        except CredentialsError as exc:
            result.problems.append(exc.problem)
            return
        _check_proof_options(proof, options, result)
        vm = proof.get("verificationMethod")
        result.verification_method = vm if isinstance(vm, str) else None
        if not isinstance(vm, str):
            result.add(ProblemType.MALFORMED, "proof has no verificationMethod",
                       "proof.verificationMethod")
            return
        if (options.require_issuer_binding and controller is not None
                and vm.split("#", 1)[0] != controller):
            result.add(ProblemType.ISSUER_MISMATCH, f"proof key {vm} does not belong to "
                       f"{controller}", "proof.verificationMethod")
        try:
            key = await self.resolver.public_key(vm, str(proof.get("proofPurpose")))
        except CredentialsError as exc:
            result.add(ProblemType.UNKNOWN_KEY, str(exc), "proof.verificationMethod")
            return
        try:
            valid = verify_proof(unsecured, proof, key)
        except CredentialsError as exc:
            result.problems.append(exc.problem)
            return
        if not valid:
            result.add(ProblemType.BAD_SIGNATURE,
                       "the proof does not match the document: it was altered or signed "
                       "by another key", "proof.proofValue")

    async def _verify_jwt_credential(
        self, token: str, options: VerifyOptions
    ) -> VerificationResult:
        result = VerificationResult("credential", "jwt", suite="jwt")
        try:
            header = unverified_header(token.strip())
        except CredentialsError as exc:
            result.problems.append(exc.problem)
            return result
        kid = header.get("kid")
        result.verification_method = kid if isinstance(kid, str) else None
        if not isinstance(kid, str):
            result.add(ProblemType.UNKNOWN_KEY, "JWS header has no kid naming the issuer key",
                       "kid")
            return result
        try:
            key = await self.resolver.public_key(kid, options.proof_purpose or "assertionMethod")
        except CredentialsError as exc:
            result.add(ProblemType.UNKNOWN_KEY, str(exc), "kid")
            return result
        try:
            claims = verify_jws(token.strip(), key)
        except CredentialsError as exc:
            result.problems.append(exc.problem)
            return result
        if claims is None:
            result.add(ProblemType.BAD_SIGNATURE, "the JWS signature is not valid for its kid")
            return result
        try:
            credential = credential_from_claims(claims)
            result.document = credential
            check_credential_shape(credential)
            result.issuer = issuer_id(credential)
            check_terms(credential)
        except CredentialsError as exc:
            result.problems.append(exc.problem)
            return result
        if options.require_issuer_binding and kid.split("#", 1)[0] != result.issuer:
            result.add(ProblemType.ISSUER_MISMATCH,
                       f"JWS key {kid} does not belong to issuer {result.issuer}", "kid")
        _check_validity_window(credential, options, result)
        for claim, problem, later in (("exp", ProblemType.EXPIRED, False),
                                      ("nbf", ProblemType.NOT_YET_VALID, True)):
            value = claims.get(claim)
            now = (options.now or now_utc()).timestamp()
            if isinstance(value, int | float) and (now < value if later else now >= value):
                if not any(p.type == problem for p in result.problems):
                    result.add(problem, f"JWT {claim} is {value}", claim)
        await self._check_status(credential, options, result)
        return result


def _check_validity_window(
    credential: dict[str, Any], options: VerifyOptions, result: VerificationResult
) -> None:
    now = options.now or now_utc()
    starts = ("validFrom", "issuanceDate")
    ends = ("validUntil", "expirationDate")
    for name in (*starts, *ends):
        if name not in credential:
            continue
        try:
            moment = parse_datetime(credential[name], path=name)
        except CredentialsError as exc:
            result.problems.append(exc.problem)
            continue
        if name in starts and moment > now:
            result.add(ProblemType.NOT_YET_VALID, f"{name} {credential[name]} is in the future",
                       name)
        if name in ends and moment <= now:
            result.add(ProblemType.EXPIRED, f"{name} {credential[name]} has passed", name)


def _check_proof_options(
    proof: dict[str, Any], options: VerifyOptions, result: VerificationResult
) -> None:
    purpose = proof.get("proofPurpose")
    if purpose != options.proof_purpose:
        result.add(ProblemType.WRONG_PROOF_PURPOSE,
                   f"proof purpose is {purpose!r}, expected {options.proof_purpose!r}",
                   "proof.proofPurpose")
    if options.challenge is not None and proof.get("challenge") != options.challenge:
        result.add(ProblemType.CHALLENGE_MISMATCH, "proof challenge does not match",
                   "proof.challenge")
    if options.domain is not None and proof.get("domain") != options.domain:
        result.add(ProblemType.DOMAIN_MISMATCH, "proof domain does not match", "proof.domain")
    now = options.now or now_utc()
    for name in ("created", "expires"):
        if name not in proof:
            continue
        try:
            moment = parse_datetime(proof[name], path=f"proof.{name}")
        except CredentialsError as exc:
            result.problems.append(exc.problem)
            continue
        if name == "expires" and moment <= now:
            result.add(ProblemType.EXPIRED, f"the proof expired at {proof[name]}", "proof.expires")


async def verify_credential(
    credential: dict[str, Any] | str,
    options: VerifyOptions | None = None,
    *,
    resolver: DIDResolver | None = None,
    status_checker: CredentialStatusChecker | None = None,
) -> VerificationResult:
    verifier = Verifier(resolver, status_checker=status_checker)
    return await verifier.verify_credential(credential, options)


async def verify_presentation(
    presentation: dict[str, Any],
    options: VerifyOptions,
    *,
    resolver: DIDResolver | None = None,
    status_checker: CredentialStatusChecker | None = None,
) -> VerificationResult:
    verifier = Verifier(resolver, status_checker=status_checker)
    return await verifier.verify_presentation(presentation, options)
