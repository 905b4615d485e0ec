"""The ``bpc`` command, run as a real process: exit codes and output are its interface."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from connector.samples import manufacturing_credential


def bpc(
    *args: str, env: dict[str, str] | None = None, stdin: str = "", cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "connector", *args],
        capture_output=True,
        text=True,
        input=stdin,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
        timeout=120,
        cwd=cwd,
    )


@pytest.fixture
def keystore_env(tmp_path: Path) -> dict[str, str]:
    return {"BPC_KEYSTORE": str(tmp_path / "keys"), "BPC_KEYSTORE_PASSPHRASE": "correct horse"}


def test_version_and_help() -> None:
    version = bpc("--version")
    assert version.returncode == 0
    assert version.stdout.startswith("bpc ")
    helptext = bpc("--help")
    assert helptext.returncode == 0
    for command in ("demo", "tour", "key", "did", "vc", "bench"):
        assert command in helptext.stdout


def test_key_new_and_did_mint_store_encrypted_keys(keystore_env: dict[str, str]) -> None:
    created = bpc("key", "new", "--label", "cell maker", env=keystore_env)
    assert created.returncode == 0, created.stderr
    key_id = created.stdout.strip()
    assert key_id.startswith("did:key:z6Mk") and "#z6Mk" in key_id
    minted = bpc("did", "mint", env=keystore_env)
    battery_did = minted.stdout.strip()
    assert minted.returncode == 0 and battery_did.startswith("did:key:z6Mk")
    assert "#" not in battery_did
    listing = bpc("key", "list", env=keystore_env)
    assert key_id.split("#")[0][:30] in listing.stdout and "cell maker" in listing.stdout
    files = list(Path(keystore_env["BPC_KEYSTORE"]).iterdir())
    assert len(files) == 2
    assert all(f.stat().st_mode & 0o777 == 0o600 for f in files)


def test_wrong_passphrase_and_missing_passphrase_are_clear_errors(
    keystore_env: dict[str, str],
) -> None:
    assert bpc("key", "new", env=keystore_env).returncode == 0
    wrong = bpc("key", "new", env={**keystore_env, "BPC_KEYSTORE_PASSPHRASE": "nope"})
    assert wrong.returncode == 2
    assert "wrong passphrase" in wrong.stderr and "Traceback" not in wrong.stderr
    assert len(list(Path(keystore_env["BPC_KEYSTORE"]).iterdir())) == 1
    missing = bpc("key", "new", env={**keystore_env, "BPC_KEYSTORE_PASSPHRASE": ""})
    assert missing.returncode == 2 and "BPC_KEYSTORE_PASSPHRASE" in missing.stderr


@pytest.mark.parametrize("suite", ["eddsa-rdfc-2022", "eddsa-jcs-2022", "jwt"])
def test_issue_then_verify_then_tamper(
    suite: str, keystore_env: dict[str, str], tmp_path: Path
) -> None:
    assert bpc("key", "new", env=keystore_env).returncode == 0
    battery = bpc("did", "mint", env=keystore_env).stdout.strip()
    unsigned = manufacturing_credential(battery, "placeholder")
    del unsigned["issuer"]  # the CLI fills in the signing key's DID
    source = tmp_path / "unsigned.json"
    source.write_text(json.dumps(unsigned))
    signed = tmp_path / "signed.out"
    issued = bpc("vc", "issue", "--suite", suite, str(source), "-o", str(signed), env=keystore_env)
    assert issued.returncode == 0, issued.stderr
    ok = bpc("vc", "verify", str(signed), "--json")
    assert ok.returncode == 0, ok.stdout
    report = json.loads(ok.stdout)
    assert report["verified"] is True and report["problems"] == []

    text = signed.read_text()
    if suite == "jwt":
        header, payload, signature = text.strip().split(".")
        text = f"{header}.{payload}.{signature[:-4]}AAAA"
    else:
        text = text.replace(unsigned["credentialSubject"]["ratedEnergyKWh"], "99.9", 1)
    signed.write_text(text)
    bad = bpc("vc", "verify", str(signed))
    assert bad.returncode == 1
    assert "invalid" in bad.stdout and "bad-signature" in bad.stdout


def test_verify_reads_stdin_and_reports_undefined_terms(keystore_env: dict[str, str]) -> None:
    assert bpc("key", "new", env=keystore_env).returncode == 0
    battery = bpc("did", "mint", env=keystore_env).stdout.strip()
    unsigned = manufacturing_credential(battery, "placeholder")
    del unsigned["issuer"]
    issued = bpc("vc", "issue", "-", env=keystore_env, stdin=json.dumps(unsigned))
    assert issued.returncode == 0, issued.stderr
    vc = json.loads(issued.stdout)
    vc["credentialSubject"]["stateOfHealthBoost"] = "100"
    result = bpc("vc", "verify", "-", "--json", stdin=json.dumps(vc))
    assert result.returncode == 1
    types = {p["type"] for p in json.loads(result.stdout)["problems"]}
    assert "undefined-term" in types


def test_bad_inputs_exit_2_without_traceback(keystore_env: dict[str, str], tmp_path: Path) -> None:
    missing = bpc("vc", "verify", str(tmp_path / "absent.json"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    broken = bpc("vc", "verify", str(garbage))
    assert broken.returncode == 2 and "not valid JSON" in broken.stderr
    nan = tmp_path / "nan.json"
    nan.write_text('{"@context": [], "x": NaN}')
    assert bpc("vc", "verify", str(nan)).returncode == 2
    assert bpc("key", "new", env=keystore_env).returncode == 0
    unsigned = manufacturing_credential("did:key:z6MkpTHR8VNsBxYAAWHut2Geadd9jSwuBV8xRoAnwWsdvktH",
                                        "x")
    del unsigned["issuer"]
    source = tmp_path / "u.json"
    source.write_text(json.dumps(unsigned))
    legacy = bpc("vc", "issue", "--suite", "Ed25519Signature2020", str(source), env=keystore_env)
    assert legacy.returncode == 2 and "VCDM 1.1" in legacy.stderr
    unknown = bpc("vc", "issue", "--suite", "rsa", str(source), env=keystore_env)
    assert unknown.returncode == 2 and "unknown suite" in unknown.stderr
    for result in (missing, broken, legacy, unknown):
        assert "Traceback" not in result.stderr


def test_tour_runs_and_catches_tampering() -> None:
    demo = bpc("tour")
    assert demo.returncode == 0, demo.stdout + demo.stderr
    assert "tampering caught" in demo.stdout
    assert demo.stdout.count("did:key:z6Mk") >= 4


@pytest.mark.slow
def test_bench_credentials_json_has_the_named_ratios() -> None:
    pytest.importorskip("didkit")
    bench = bpc("bench", "credentials", "--json", "--seconds", "0.05", "--rounds", "1")
    assert bench.returncode == 0, bench.stderr
    report = json.loads(bench.stdout)
    assert report["area"] == "credentials"
    assert report["machine"]["cpus"] >= 1
    for metric in ("rdfc_issue", "rdfc_verify", "jcs_issue", "jcs_verify", "jwt_issue",
                   "jwt_verify", "didkit_2018_issue", "didkit_2018_verify", "didkit_jwt_issue",
                   "didkit_jwt_verify", "nacl_sign", "nacl_verify"):
        assert report["metrics"][metric]["unit"] == "ops/s"
        assert report["metrics"][metric]["value"] > 0
    for ratio in ("jcs_issue_vs_didkit_jwt_issue", "rdfc_issue_vs_didkit_2018_issue",
                  "rdfc_verify_vs_didkit_2018_verify"):
        assert report["ratios"][ratio] > 0
    table = bpc("bench", "credentials", "--seconds", "0.05", "--rounds", "1")
    assert table.returncode == 0 and "jcs_issue_vs_didkit_jwt_issue" in table.stdout


@pytest.mark.slow
def test_bench_passport_json_has_the_named_metrics() -> None:
    pytest.importorskip("didkit")
    bench = bpc("bench", "passport", "--json", "--rounds", "1")
    assert bench.returncode == 0, bench.stderr
    report = json.loads(bench.stdout)
    assert report["area"] == "passport"
    for metric in ("audit_50_jcs_ms", "audit_50_rdfc_ms", "mass_balance_10k_ms"):
        assert report["metrics"][metric]["unit"] == "ms"
        assert report["metrics"][metric]["value"] > 0
    assert report["ratios"]["audit_50_jcs_vs_didkit_jwt_verify_50"] > 0
