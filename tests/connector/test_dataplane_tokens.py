"""Data plane tokens: round trip, each refusal kind, expiry by the clock passed in, refresh."""

from __future__ import annotations

import base64
import json
import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from connector.dataplane.tokens import (
    PROP_AUTH_TYPE,
    PROP_AUTHORIZATION,
    PROP_ENDPOINT,
    PROP_EXPIRES_IN,
    PROP_REFRESH_AUDIENCE,
    PROP_REFRESH_ENDPOINT,
    PROP_REFRESH_TOKEN,
    AccessToken,
    RefreshRefusal,
    RefreshRefusalKind,
    TokenError,
    TokenErrorKind,
    data_address,
    hash_refresh_token,
    mint_access_token,
    refresh,
    verify_access_token,
)
from connector.dsp.messages import DataAddress
from connector.policy_gate import CX_USAGE_END_DAYS
from credentials.jose import sign_jws
from credentials.keys import Ed25519Key

PROVIDER = Ed25519Key(bytes(range(32)), "did:web:provider.example#key-1")
OTHER_KEY = Ed25519Key(os.urandom(32), "did:web:provider.example#key-1")
CONSUMER = "did:web:recycler.example"
STRANGER = "did:web:stranger.example"
ENDPOINT = "https://provider.example/api/public"
REFRESH_ENDPOINT = "https://provider.example/api/public/token"
ASSET = "urn:uuid:passport-1"
AGREEMENT = "urn:uuid:agreement-1"
NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def mint(now: datetime = NOW, **overrides: Any) -> AccessToken:
    args: dict[str, Any] = {"agreement_id": AGREEMENT, "consumer_did": CONSUMER,
                            "asset_id": ASSET, "audience": ENDPOINT, "now": now}
    return mint_access_token(PROVIDER, **{**args, **overrides})


def verify(token: str, *, now: datetime = NOW, asset_id: str = ASSET,
           audience: str = ENDPOINT, key: Ed25519Key = PROVIDER) -> Any:
    return verify_access_token(token, provider_key=key.public_key, expected_audience=audience,
                               asset_id=asset_id, now=now)


def agreement_policy(days: int | None = 7) -> dict[str, Any]:
    rule: dict[str, Any] = {"action": "use"}
    if days is not None:
        rule["constraint"] = [{"leftOperand": CX_USAGE_END_DAYS, "operator": "eq",
                               "rightOperand": str(days)}]
    return {"@type": "Agreement", "@id": AGREEMENT, "assignee": CONSUMER,
            "assigner": PROVIDER.controller, "target": ASSET, "permission": [rule]}


def do_refresh(issued: AccessToken, *, now: datetime = NOW, caller: str = CONSUMER,
               presented: str | None = None, policy: Any = None) -> AccessToken | RefreshRefusal:
    return refresh(
        PROVIDER,
        stored_refresh_token_hash=issued.refresh_token_hash,
        presented_refresh_token=issued.refresh_token if presented is None else presented,
        caller_did=caller,
        consumer_did=CONSUMER,
        agreement_policy=agreement_policy() if policy is None else policy,
        agreement_start=NOW,
        agreement_id=AGREEMENT,
        asset_id=ASSET,
        audience=ENDPOINT,
        now=now,
    )


def claims_of(token: str) -> dict[str, Any]:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_round_trip() -> None:
    issued = mint()
    claims = verify(issued.token)
    assert claims.issuer == PROVIDER.controller
    assert claims.consumer_did == CONSUMER
    assert claims.audience == ENDPOINT
    assert claims.agreement_id == AGREEMENT
    assert claims.asset_id == ASSET
    assert claims.jti == issued.jti
    assert claims.expires_at - claims.issued_at == 300 == issued.expires_in
    raw = claims_of(issued.token)
    assert {"iss", "sub", "aud", "jti", "iat", "exp"} <= set(raw)


def test_each_token_gets_its_own_jti_and_refresh_token() -> None:
    a, b = mint(), mint()
    assert a.jti != b.jti
    assert a.refresh_token != b.refresh_token
    assert len(a.refresh_token) >= 43  # 32 random bytes, base64url


def test_expiry_by_the_clock_passed_in() -> None:
    issued = mint(lifetime_s=60)
    verify(issued.token, now=NOW + timedelta(seconds=59))
    with pytest.raises(TokenError) as err:
        verify(issued.token, now=NOW + timedelta(seconds=60))
    assert err.value.kind is TokenErrorKind.EXPIRED


def test_token_for_another_asset_is_refused() -> None:
    issued = mint(asset_id="urn:uuid:passport-2")
    with pytest.raises(TokenError) as err:
        verify(issued.token)
    assert err.value.kind is TokenErrorKind.WRONG_ASSET


def test_wrong_audience() -> None:
    with pytest.raises(TokenError) as err:
        verify(mint().token, audience="https://other.example/api/public")
    assert err.value.kind is TokenErrorKind.WRONG_AUDIENCE


def test_bad_signature_other_key() -> None:
    with pytest.raises(TokenError) as err:
        verify(mint().token, key=OTHER_KEY)
    assert err.value.kind is TokenErrorKind.BAD_SIGNATURE


def test_bad_signature_tampered_payload() -> None:
    header, _, signature = mint().token.split(".")
    forged_claims = {**claims_of(mint().token), "asset_id": "urn:uuid:passport-2"}
    payload = base64.urlsafe_b64encode(json.dumps(forged_claims).encode()).rstrip(b"=").decode()
    with pytest.raises(TokenError) as err:
        verify(f"{header}.{payload}.{signature}", asset_id="urn:uuid:passport-2")
    assert err.value.kind is TokenErrorKind.BAD_SIGNATURE


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b", "a.b.c.d", "Zm9v.YmFy.YmF6"])
def test_malformed(token: str) -> None:
    with pytest.raises(TokenError) as err:
        verify(token)
    assert err.value.kind is TokenErrorKind.MALFORMED


def test_malformed_when_validly_signed_but_claims_missing() -> None:
    token = sign_jws({"alg": "EdDSA", "kid": PROVIDER.key_id},
                     {"iss": PROVIDER.controller, "aud": ENDPOINT, "exp": 2**40}, PROVIDER)
    with pytest.raises(TokenError) as err:
        verify(token)
    assert err.value.kind is TokenErrorKind.MALFORMED


def test_non_string_token_is_malformed() -> None:
    with pytest.raises(TokenError) as err:
        verify(None)  # type: ignore[arg-type]
    assert err.value.kind is TokenErrorKind.MALFORMED


def test_naive_now_is_rejected() -> None:
    with pytest.raises(ValueError):
        mint(now=datetime(2026, 3, 1, 12, 0))


def test_refresh_token_is_not_stored_plain() -> None:
    issued = mint()
    record = issued.storage_record()
    assert record["refresh_token_hash"] == hash_refresh_token(issued.refresh_token)
    assert issued.refresh_token not in json.dumps(record)
    assert issued.refresh_token not in repr(issued)
    assert issued.refresh_token not in issued.token
    assert issued.refresh_token not in json.dumps(claims_of(issued.token))


def test_refresh_issues_a_new_token_and_rotates_the_refresh_token() -> None:
    issued = mint()
    later = NOW + timedelta(days=1)
    renewed = do_refresh(issued, now=later)
    assert isinstance(renewed, AccessToken)
    assert renewed.refresh_token != issued.refresh_token
    assert renewed.jti != issued.jti
    assert verify(renewed.token, now=later).consumer_did == CONSUMER


def test_refresh_refused_after_the_agreement_ends() -> None:
    issued = mint()
    refusal = do_refresh(issued, now=NOW + timedelta(days=8))
    assert refusal == RefreshRefusal(RefreshRefusalKind.AGREEMENT_ENDED, refusal.detail)


def test_refresh_refused_when_the_agreement_is_not_understood() -> None:
    refusal = do_refresh(mint(), policy={"permission": []})
    assert isinstance(refusal, RefreshRefusal)
    assert refusal.kind is RefreshRefusalKind.AGREEMENT_ENDED


def test_refresh_refused_for_another_consumer() -> None:
    refusal = do_refresh(mint(), caller=STRANGER)
    assert isinstance(refusal, RefreshRefusal)
    assert refusal.kind is RefreshRefusalKind.WRONG_CONSUMER


def test_another_consumer_learns_nothing_about_an_ended_agreement() -> None:
    refusal = do_refresh(mint(), caller=STRANGER, now=NOW + timedelta(days=30))
    assert isinstance(refusal, RefreshRefusal)
    assert refusal.kind is RefreshRefusalKind.WRONG_CONSUMER


@pytest.mark.parametrize("presented", ["", "guess", "x" * 43])
def test_refresh_refused_for_a_bad_refresh_token(presented: str) -> None:
    refusal = do_refresh(mint(), presented=presented)
    assert isinstance(refusal, RefreshRefusal)
    assert refusal.kind is RefreshRefusalKind.BAD_REFRESH_TOKEN


def test_refresh_refused_when_the_hash_itself_is_presented() -> None:
    issued = mint()
    refusal = do_refresh(issued, presented=issued.refresh_token_hash)
    assert isinstance(refusal, RefreshRefusal)
    assert refusal.kind is RefreshRefusalKind.BAD_REFRESH_TOKEN


def test_refresh_refused_with_an_empty_stored_hash() -> None:
    issued = replace(mint(), refresh_token_hash="")
    refusal = do_refresh(issued)
    assert isinstance(refusal, RefreshRefusal)
    assert refusal.kind is RefreshRefusalKind.BAD_REFRESH_TOKEN


def test_data_address_has_the_documented_property_names() -> None:
    issued = mint()
    address = data_address(ENDPOINT, issued, refresh_endpoint=REFRESH_ENDPOINT)
    assert address["@type"] == "DataAddress"
    assert address["endpointType"] == "https://w3id.org/idsa/v4.1/HTTP"
    assert address["endpoint"] == ENDPOINT
    props = {p["name"]: p["value"] for p in address["endpointProperties"]}
    assert all(p["@type"] == "EndpointProperty" for p in address["endpointProperties"])
    assert props["https://w3id.org/edc/v0.0.1/ns/endpoint"] == ENDPOINT
    assert props["https://w3id.org/edc/v0.0.1/ns/authorization"] == issued.token
    assert props["https://w3id.org/edc/v0.0.1/ns/authType"] == "bearer"
    assert props["https://w3id.org/tractusx/auth/refreshToken"] == issued.refresh_token
    assert props["https://w3id.org/tractusx/auth/expiresIn"] == "300"
    assert props["https://w3id.org/tractusx/auth/refreshEndpoint"] == REFRESH_ENDPOINT
    assert props["https://w3id.org/tractusx/auth/refreshAudience"] == PROVIDER.controller
    assert {PROP_ENDPOINT, PROP_AUTHORIZATION, PROP_AUTH_TYPE, PROP_REFRESH_TOKEN,
            PROP_EXPIRES_IN, PROP_REFRESH_ENDPOINT, PROP_REFRESH_AUDIENCE} <= set(props)
    assert all(isinstance(value, str) for value in props.values())


def test_data_address_fits_the_dsp_model() -> None:
    address = data_address(ENDPOINT, mint(), refresh_endpoint=REFRESH_ENDPOINT)
    parsed = DataAddress.model_validate(address)
    assert parsed.endpoint == ENDPOINT
    assert parsed.endpoint_properties is not None


def test_endpoint_properties_read_full_iris_and_bare_names_alike() -> None:
    from connector.dataplane.tokens import (
        PROP_AUTHORIZATION,
        PROP_REFRESH_TOKEN,
        endpoint_properties,
        with_endpoint_properties,
    )

    address = {"@type": "DataAddress", "endpoint": "https://oem.example/dataplane/assets/a",
               "endpointProperties": [
                   {"@type": "EndpointProperty", "name": PROP_AUTHORIZATION, "value": "t1"},
                   {"@type": "EndpointProperty", "name": "refreshToken", "value": "r1"},
                   {"@type": "EndpointProperty", "name": "odd", "value": 7},
               ]}
    assert endpoint_properties(address) == {"authorization": "t1", "refreshToken": "r1"}
    updated = with_endpoint_properties(address, {PROP_AUTHORIZATION: "t2",
                                                 PROP_REFRESH_TOKEN: "r2",
                                                 "https://w3id.org/tractusx/auth/expiresIn": "300"})
    assert endpoint_properties(updated) == {"authorization": "t2", "refreshToken": "r2",
                                            "expiresIn": "300"}
    names = [p["name"] for p in updated["endpointProperties"]]
    assert names[:3] == [PROP_AUTHORIZATION, "refreshToken", "odd"], "kept in place, not doubled"
    assert address["endpointProperties"][0]["value"] == "t1", "the original is not changed"
    assert endpoint_properties({"endpointProperties": "nonsense"}) == {}
