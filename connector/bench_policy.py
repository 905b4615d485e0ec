"""``bpc bench policy``: the cost of deciding a request for dismantling data, in one process.

What a provider does when a certified recycler asks for a battery's dismantling data: verify
the recycler's presentation, evaluate the offer's policy against the verified credentials, and
check that the credentials are not revoked. Each step is measured on its own:

- ``policy_evals_per_s``: ``policies.evaluate`` of the DEFAULT dismantling policy
  (``policies.defaults``, data category ``dismantling-safety``), given as the compact JSON a
  node stores, so every evaluation parses it, as the gate does with stored offers. The
  context holds three already-verified credentials of the requester: a MembershipCredential
  and a DataExchangeGovernanceCredential (contract version 1.0) from the Catena-X issuer, and
  a DismantlerCredential (``activityType`` vehicleDismantle) from a certification body, each
  issuer trusted for its types only (``TrustList``), with the declared purpose
  ``cx.circular.dpp:1`` and an agreement concluded a day before ``now``. The default policy
  needs the governance and dismantler credentials; membership is there because every Catena-X
  participant presents it, and the engine must look past it. The decision is asserted to be
  ALLOWED, with the delete duty due seven days after the agreement, before anything is timed:
  a denial stops early and would measure the wrong path.
- ``policy_evals_with_verify_per_s``: the same evaluation, preceded by
  ``credentials.Verifier.verify_presentation`` of a presentation carrying those three
  credentials, the holder's proof bound to the verifier's challenge and domain (four Ed25519
  proofs, keys from did:key: offline). The evaluation gets the credentials the verifier
  returns. The proofs are **eddsa-jcs-2022**: with eddsa-rdfc-2022 the RDF canonicalisation of
  the four documents takes some forty times as long as the evaluation (about 110
  presentations/s against 4,800 evaluations/s on the 2-CPU development machine), so the
  figure would measure pyld, not this path (``bpc bench credentials`` measures RDFC). The
  presentation is signed once: signing it is the holder's cost, not the provider's. The
  credentials carry no status entry (status is the next metric).
- ``status_checks_per_s``: ``StatusChecker.check_status`` (the hook ``Verifier`` calls) on a
  credential with a revocation entry, with a warm cache: an in-memory fetcher serves the
  signed (eddsa-rdfc-2022, as the node publishes) status list credential, whose bitstring has
  the spec's minimum 131,072 entries, 16 KB. The first call fetches and verifies it; the
  timed ones read the cached bits. That the fetcher was called exactly once is asserted
  after timing.

References, measured in the same run with the rounds interleaved (DESIGN.md: ratios are
ours / reference for rates, bigger is better):

- ``nacl_verify``: one raw Ed25519 verification with PyNaCl (libsodium) of a 64-byte message,
  what a Data Integrity proof signs (two SHA-256 digests). The floor of any verifier.
  ``policy_evals_with_verify_vs_nacl_verify`` cannot exceed 0.25: a presentation with three
  credentials is four signature checks. How far below 0.25 it sits is what JSON handling, JCS,
  DID resolution and the policy cost on top of the cryptography.
  ``status_checks_vs_nacl_verify`` above 1 means a warm status check costs less than one
  signature check, i.e. checking revocation adds little to verifying.
- ``json_roundtrip``: ``json.loads(json.dumps(...))`` of the evaluation's inputs (the policy
  and the three credentials). There is no other ODRL engine in Python to compare with, so this
  normalises the machine's speed: the inverse of ``policy_evals_vs_json_roundtrip`` is how
  many plain JSON round trips of its inputs one evaluation costs, which changes when the
  engine does, not when the machine is busier.

Rates use ``connector.bench``'s round method (batches doubling up to 256 per round of
``seconds``), and the median of ``rounds`` rounds is reported.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from nacl.signing import SigningKey

from connector import samples
from connector.bench import Operation, as_operation, machine_info, rate_of
from credentials import (
    JCS,
    RDFC,
    Ed25519Key,
    StatusChecker,
    StatusListIssuer,
    VerificationResult,
    Verifier,
    VerifyOptions,
    attach_status,
    create_presentation,
    issue_credential,
    key_from_seed,
    sign_presentation,
)
from credentials.status_list import REVOCATION
from policies import Decision, EvaluationContext, TrustList, evaluate
from policies.defaults import BATTERY_PASS_PURPOSE, DataCategory, default_policy
from vocab import CREDENTIALS_V2

#: Fixed instants: the run does not depend on the wall clock (expiry, usage windows).
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ISSUED = NOW - timedelta(days=60)
EXPIRES = NOW + timedelta(days=305)
AGREED = NOW - timedelta(days=1)
#: The context that lets a VCDM 2.0 credential carry terms no bundled context defines (the
#: Catena-X governance credential's ``contractVersion``, ``useCase``, ``group``).
UNDEFINED_TERMS_V2 = "https://www.w3.org/ns/credentials/undefined-terms/v2"
CHALLENGE = "bench-challenge-4f1c"
DOMAIN = "did:web:provider.example"
STATUS_URL = "https://issuer.example/status/revocation/1"
REQUESTER_BPN = "BPNL00000000RCYC"

#: (ratio, our metric, reference metric): ours / reference, bigger is better.
POLICY_RATIOS = (
    ("policy_evals_vs_json_roundtrip", "policy_evals_per_s", "json_roundtrip"),
    ("policy_evals_with_verify_vs_nacl_verify", "policy_evals_with_verify_per_s",
     "nacl_verify"),
    ("status_checks_vs_nacl_verify", "status_checks_per_s", "nacl_verify"),
)

#: Metric name → (unit, note). Notes travel in the JSON so a reader knows what was measured.
METRICS: Mapping[str, tuple[str, str]] = {
    "policy_evals_per_s": (
        "evaluations/s",
        "default dismantling policy (compact JSON, parsed each time), 3 verified "
        "credentials, decision ALLOWED"),
    "policy_evals_with_verify_per_s": (
        "evaluations/s",
        "verify a 3-credential presentation (4 eddsa-jcs-2022 proofs, did:key, challenge "
        "and domain) then evaluate; decision ALLOWED"),
    "status_checks_per_s": (
        "checks/s",
        "StatusChecker.check_status, warm cache, 131,072-entry (16 KB) signed list"),
    "nacl_verify": ("verifications/s", "reference: raw PyNaCl Ed25519 verify, 64-byte message"),
    "json_roundtrip": ("round trips/s",
                       "reference: json.loads(json.dumps(policy + 3 credentials))"),
}


@dataclass(frozen=True, slots=True)
class PolicyScenario:
    """Everything the measured operations use, built once (keys are seeded: same run, same
    documents)."""

    policy: dict[str, Any]
    requester: str
    trust: TrustList
    #: The three credentials as the verifier hands them out (signed VCDM 2.0 documents).
    credentials: tuple[dict[str, Any], ...]
    presentation: dict[str, Any]
    #: A credential with a revocation entry, and the published list credential by URL.
    status_credential: dict[str, Any]
    status_lists: Mapping[str, dict[str, Any]]

    def context(self, credentials: Any = None) -> EvaluationContext:
        """The request's facts; ``credentials`` defaults to the already-verified ones."""
        return EvaluationContext(
            self.requester, NOW, AGREED,
            credentials=self.credentials if credentials is None else credentials,
            trust=self.trust, purpose=BATTERY_PASS_PURPOSE,
        )

    def verify_options(self) -> VerifyOptions:
        return VerifyOptions(challenge=CHALLENGE, domain=DOMAIN, now=NOW)


def _governance(holder: str, issuer: str) -> dict[str, Any]:
    """A Catena-X DataExchangeGovernanceCredential (tractusx-profiles sample shape)."""
    return {
        "@context": [CREDENTIALS_V2, UNDEFINED_TERMS_V2],
        "id": "urn:uuid:6f0c2b8e-4a5d-4c1e-9a57-0d2b7f3e8c41",
        "type": ["VerifiableCredential", "DataExchangeGovernanceCredential"],
        "issuer": issuer,
        "credentialSubject": {"id": holder, "holderIdentifier": REQUESTER_BPN,
                              "group": "UseCaseFramework", "useCase": "DataExchangeGovernance",
                              "contractVersion": "1.0"},
    }


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def build_scenario(*, trust: TrustList | None = None) -> PolicyScenario:
    """The recycler's credentials, presentation and status list; ``trust`` replaces the
    node's trust list (the tests use it to show a denial is refused, not measured)."""
    catena_x = key_from_seed(bytes([41] * 32))
    certifier = key_from_seed(bytes([42] * 32))
    recycler = key_from_seed(bytes([43] * 32))
    rng = random.Random(2026)
    holder = recycler.controller
    unsigned: list[tuple[dict[str, Any], Ed25519Key]] = [
        (samples.membership(holder, catena_x.controller, bpnl=REQUESTER_BPN, rng=rng,
                            issued=ISSUED), catena_x),
        (samples.dismantler(holder, certifier.controller, bpnl=REQUESTER_BPN, rng=rng,
                            issued=ISSUED), certifier),
        (_governance(holder, catena_x.controller), catena_x),
    ]
    credentials = []
    for document, key in unsigned:
        document = {**document, "validFrom": _stamp(ISSUED), "validUntil": _stamp(EXPIRES)}
        credentials.append(issue_credential(document, key, suite=JCS, now=ISSUED))
    presentation = sign_presentation(create_presentation(list(credentials), holder), recycler,
                                     challenge=CHALLENGE, domain=DOMAIN, suite=JCS, now=NOW)

    lists = StatusListIssuer(catena_x, suite=RDFC, rng=random.Random(7))
    lists.create_list(STATUS_URL, REVOCATION)
    for _ in range(32):  # a list in use: some others' credentials revoked
        lists.revoke(lists.allocate_entries(REVOCATION)[0])
    entry = lists.allocate_entries(REVOCATION)
    membership = {**unsigned[0][0], "validFrom": _stamp(ISSUED), "validUntil": _stamp(EXPIRES)}
    status_credential = issue_credential(attach_status(membership, entry), catena_x,
                                         suite=JCS, now=ISSUED)
    published = lists.list_credential(STATUS_URL, now=ISSUED)
    policy = default_policy(DataCategory.DISMANTLING_SAFETY, "urn:bpc:bench:dismantling")
    if not isinstance(published, dict) or policy is None:
        raise RuntimeError("no data integrity list credential, or no dismantling policy")

    return PolicyScenario(
        policy=policy,
        requester=holder,
        trust=trust if trust is not None else TrustList.of({
            "MembershipCredential": [catena_x.controller],
            "DataExchangeGovernanceCredential": [catena_x.controller],
            "DismantlerCredential": [certifier.controller],
        }),
        credentials=tuple(credentials),
        presentation=presentation,
        status_credential=status_credential,
        status_lists={STATUS_URL: published},
    )


def require_allowed(decision: Decision) -> Decision:
    """Refuse to time anything but the real path: ALLOWED, with the dismantling delete duty
    due seven days after the agreement."""
    if not decision.allowed:
        raise RuntimeError(f"the benchmark's policy evaluation is not an allow: "
                           f"{decision.to_json()}")
    due = [duty.due_at for duty in decision.duties]
    if due != [AGREED + timedelta(days=7)]:
        raise RuntimeError(f"expected the 7-day delete duty, got {decision.to_json()}")
    return decision


def _require_verified(result: VerificationResult) -> list[dict[str, Any]]:
    if not result.verified or len(result.credentials) != 3:
        raise RuntimeError(f"the benchmark presentation does not verify: {result.to_json()}")
    return [c.document for c in result.credentials if c.document is not None]


class _MemoryLists:
    """The status list 'web': serves published list credentials, counting fetches."""

    def __init__(self, published: Mapping[str, dict[str, Any]]) -> None:
        self.published = published
        self.fetches = 0

    async def __call__(self, url: str) -> dict[str, Any]:
        self.fetches += 1
        return json.loads(json.dumps(self.published[url]))


async def _operations(scenario: PolicyScenario, lists: _MemoryLists) -> dict[str, Operation]:
    policy = scenario.policy
    verifier = Verifier()
    options = scenario.verify_options()

    def policy_eval() -> Decision:
        return evaluate(policy, scenario.context())

    async def policy_eval_with_verify() -> Decision:
        result = await verifier.verify_presentation(scenario.presentation, options)
        if not result.verified:
            raise RuntimeError(f"presentation stopped verifying: {result.to_json()}")
        return evaluate(policy, scenario.context([c.document for c in result.credentials]))

    require_allowed(policy_eval())
    verified = _require_verified(await verifier.verify_presentation(scenario.presentation,
                                                                    options))
    require_allowed(evaluate(policy, scenario.context(verified)))
    require_allowed(await policy_eval_with_verify())

    checker = StatusChecker(lists, max_age_s=24 * 3600.0)  # warm for the whole run
    status_verifier = Verifier(status_checker=checker)
    credential = scenario.status_credential
    issuer = credential["issuer"]
    status_options = VerifyOptions(now=NOW)

    async def status_check() -> VerificationResult:
        result = VerificationResult("credential", "ldp", issuer=issuer)
        await checker.check_status(credential, result, status_options, verifier=status_verifier)
        return result

    warmed = await status_check()
    if warmed.problems or not warmed.status_checked or lists.fetches != 1:
        raise RuntimeError(f"the status check does not pass: {warmed.to_json()}")

    signing = SigningKey(bytes([44] * 32))
    message = bytes(range(64))
    signature = signing.sign(message).signature
    verify_key = signing.verify_key
    inputs = {"policy": policy, "credentials": list(scenario.credentials)}

    return {
        "policy_evals_per_s": as_operation(policy_eval),
        "policy_evals_with_verify_per_s": policy_eval_with_verify,
        "status_checks_per_s": status_check,
        "nacl_verify": as_operation(lambda: verify_key.verify(message, signature)),
        "json_roundtrip": as_operation(lambda: json.loads(json.dumps(inputs))),
    }


async def _measure_policy(seconds: float, rounds: int) -> dict[str, float]:
    scenario = build_scenario()
    lists = _MemoryLists(scenario.status_lists)
    operations = await _operations(scenario, lists)
    for operation in operations.values():  # warm caches (contexts, term shapes, DIDs)
        await rate_of(operation, min(seconds, 0.05))
    samples_per_s: dict[str, list[float]] = {name: [] for name in operations}
    for _ in range(rounds):
        for name, operation in operations.items():
            samples_per_s[name].append(await rate_of(operation, seconds))
    if lists.fetches != 1:
        raise RuntimeError(f"the status cache went cold: {lists.fetches} fetches")
    return {name: statistics.median(values) for name, values in samples_per_s.items()}


def policy_benchmark(*, rounds: int = 3, seconds: float = 0.3) -> dict[str, Any]:
    """Policy evaluation, with presentation verification, and warm status checks; the result
    follows the format in DESIGN.md (Benchmarks), each metric with a ``note``."""
    rates = asyncio.run(_measure_policy(seconds, rounds))
    metrics: dict[str, dict[str, Any]] = {}
    for name, rate in rates.items():
        unit, note = METRICS[name]
        metrics[name] = {"value": round(rate, 1), "unit": unit, "note": note}
    return {
        "area": "policy",
        "machine": machine_info(),
        "metrics": metrics,
        "ratios": {name: round(rates[ours] / rates[ref], 3) for name, ours, ref in POLICY_RATIOS},
    }


__all__ = ["METRICS", "POLICY_RATIOS", "PolicyScenario", "build_scenario", "policy_benchmark",
           "require_allowed"]
