"""Keystore: keys encrypted at rest, owner-only files, tamper and path-escape resistance."""

from __future__ import annotations

import base64
import json
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from nacl.pwhash import argon2id

import credentials.keystore as keystore_module
from credentials.did_key import key_from_seed
from credentials.errors import KeystoreError
from credentials.keys import Ed25519Key
from credentials.keystore import KeyInfo, KeyNotFound, Keystore, WrongPassphrase

PASSPHRASE = "correct horse battery staple"
SEED = bytes(range(32))


def make_store(directory: Path, passphrase: str | bytes = PASSPHRASE) -> Keystore:
    return Keystore(
        directory,
        passphrase,
        kdf_opslimit=argon2id.OPSLIMIT_MIN,
        kdf_memlimit=argon2id.MEMLIMIT_MIN,
    )


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    return tmp_path / "keys"


@pytest.fixture
def store(store_dir: Path) -> Keystore:
    return make_store(store_dir)


@pytest.fixture
def key() -> Ed25519Key:
    return key_from_seed(SEED)


def only_file(directory: Path) -> Path:
    files = list(directory.iterdir())
    assert len(files) == 1, files
    return files[0]


def test_round_trip(store: Keystore, key: Ed25519Key) -> None:
    store.add(key, label="pack 42")
    loaded = store.get(key.key_id)
    assert loaded.seed == key.seed
    assert loaded.key_id == key.key_id
    assert key.key_id in store
    assert "did:key:zOther#zOther" not in store


def test_round_trip_in_a_fresh_instance(store_dir: Path, store: Keystore, key: Ed25519Key) -> None:
    store.add(key)
    assert make_store(store_dir, PASSPHRASE.encode()).get(key.key_id) == key


def test_stored_key_signs_like_the_original(store: Keystore, key: Ed25519Key) -> None:
    store.add(key)
    loaded = store.get(key.key_id)
    message = b"battery passport v1"
    assert loaded.sign(message) == key.sign(message)
    assert key.public_key.verify(message, loaded.sign(message))


def test_file_and_directory_modes(store_dir: Path, store: Keystore, key: Ed25519Key) -> None:
    store.add(key)
    assert stat.S_IMODE(store_dir.stat().st_mode) == 0o700
    assert stat.S_IMODE(only_file(store_dir).stat().st_mode) == 0o600


def test_file_layout_and_no_plaintext_seed(
    store_dir: Path, store: Keystore, key: Ed25519Key
) -> None:
    store.add(key, label="pack 42")
    path = only_file(store_dir)
    raw = path.read_bytes()
    text = raw.decode("utf-8")
    assert key.seed not in raw
    assert key.seed.hex() not in text.lower()
    assert key.private_multibase not in text
    assert base64.b64encode(key.seed).decode() not in text
    assert base64.urlsafe_b64encode(key.seed).decode().rstrip("=") not in text

    doc = json.loads(text)
    assert doc["version"] == 1
    assert doc["keyId"] == key.key_id
    assert doc["controller"] == key.controller
    assert doc["publicKeyMultibase"] == key.public_key.multibase
    assert doc["label"] == "pack 42"
    assert doc["kdf"]["alg"] == "argon2id"
    assert doc["kdf"]["opslimit"] == argon2id.OPSLIMIT_MIN
    assert doc["kdf"]["memlimit"] == argon2id.MEMLIMIT_MIN
    assert len(base64.b64decode(doc["kdf"]["salt"])) == argon2id.SALTBYTES
    assert base64.b64decode(doc["ciphertext"])


def test_each_file_gets_its_own_salt(store_dir: Path, store: Keystore) -> None:
    store.new_key()
    store.new_key()
    salts = {json.loads(p.read_text())["kdf"]["salt"] for p in store_dir.iterdir()}
    assert len(salts) == 2


def test_default_kdf_limits_are_interactive(tmp_path: Path) -> None:
    ks = Keystore(tmp_path, "pw")
    assert (ks._opslimit, ks._memlimit) == (
        argon2id.OPSLIMIT_INTERACTIVE,
        argon2id.MEMLIMIT_INTERACTIVE,
    )


def test_kdf_params_are_read_from_the_file(
    store_dir: Path, store: Keystore, key: Ed25519Key
) -> None:
    store.add(key)
    # A store configured with other limits still opens the file with the limits it records.
    other = Keystore(
        store_dir, PASSPHRASE, kdf_opslimit=argon2id.OPSLIMIT_MIN + 1, kdf_memlimit=16 * 1024
    )
    assert other.get(key.key_id) == key


def test_derived_key_is_cached(
    monkeypatch: pytest.MonkeyPatch, store: Keystore, key: Ed25519Key
) -> None:
    calls = []
    real_kdf = argon2id.kdf

    def counting_kdf(*args: object, **kwargs: object) -> bytes:
        calls.append(args)
        return real_kdf(*args, **kwargs)

    monkeypatch.setattr(keystore_module.argon2id, "kdf", counting_kdf)
    store.add(key)
    for _ in range(3):
        store.get(key.key_id)
    assert len(calls) == 1


def test_wrong_passphrase(store_dir: Path, store: Keystore, key: Ed25519Key) -> None:
    store.add(key)
    with pytest.raises(WrongPassphrase, match="wrong passphrase"):
        make_store(store_dir, "not the passphrase").get(key.key_id)


def test_unknown_key(store: Keystore, key: Ed25519Key) -> None:
    with pytest.raises(KeyNotFound):
        store.get(key.key_id)
    store.add(key)
    with pytest.raises(KeyNotFound) as info:
        store.get("did:key:zNope#zNope")
    assert isinstance(info.value, KeyError)
    assert isinstance(info.value, KeystoreError)
    assert "did:key:zNope#zNope" in str(info.value)


def test_tampered_ciphertext(store_dir: Path, store: Keystore, key: Ed25519Key) -> None:
    store.add(key)
    path = only_file(store_dir)
    doc = json.loads(path.read_text())
    ciphertext = bytearray(base64.b64decode(doc["ciphertext"]))
    ciphertext[-1] ^= 0x01
    doc["ciphertext"] = base64.b64encode(bytes(ciphertext)).decode()
    path.write_text(json.dumps(doc))
    with pytest.raises(KeystoreError, match="corrupted") as info:
        make_store(store_dir).get(key.key_id)
    assert not isinstance(info.value, WrongPassphrase)


def test_tampered_created_at_is_detected(store_dir: Path, store: Keystore, key: Ed25519Key) -> None:
    store.add(key)
    path = only_file(store_dir)
    doc = json.loads(path.read_text())
    doc["createdAt"] = "2000-01-01T00:00:00.000000Z"
    path.write_text(json.dumps(doc))
    with pytest.raises(KeystoreError, match="altered"):
        make_store(store_dir).get(key.key_id)


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"[]",
        b'{"version": 2}',
        b"\xff\xfe",
    ],
)
def test_garbage_file_is_a_keystore_error(
    store_dir: Path, store: Keystore, key: Ed25519Key, content: bytes
) -> None:
    store.add(key)
    only_file(store_dir).write_bytes(content)
    with pytest.raises(KeystoreError, match="corrupted"):
        store.get(key.key_id)
    with pytest.raises(KeystoreError, match="corrupted"):
        store.list()


def test_huge_kdf_limits_in_file_are_refused(
    store_dir: Path, store: Keystore, key: Ed25519Key
) -> None:
    store.add(key)
    path = only_file(store_dir)
    doc = json.loads(path.read_text())
    doc["kdf"]["memlimit"] = 2**40
    path.write_text(json.dumps(doc))
    with pytest.raises(KeystoreError, match="memlimit"):
        make_store(store_dir).get(key.key_id)


def test_adding_twice_is_refused_and_keeps_the_first_file(
    store_dir: Path, store: Keystore, key: Ed25519Key
) -> None:
    store.add(key, label="first")
    path = only_file(store_dir)
    before = path.read_bytes()
    with pytest.raises(KeystoreError, match="already"):
        store.add(key, label="second")
    # Same id, different seed: must not replace the stored key either.
    with pytest.raises(KeystoreError, match="already"):
        store.add(Ed25519Key(bytes(32), key.key_id), label="impostor")
    assert path.read_bytes() == before
    assert only_file(store_dir) == path  # no temp files left behind
    assert store.get(key.key_id) == key


def test_list_needs_no_correct_passphrase(store_dir: Path, store: Keystore) -> None:
    first = store.new_key(label="a")
    second = store.new_key(label="b")
    infos = make_store(store_dir, "wrong").list()
    assert [info.key_id for info in infos] == [first.key_id, second.key_id]
    assert infos[0] == KeyInfo(
        key_id=first.key_id,
        controller=first.controller,
        public_key_multibase=first.public_key.multibase,
        label="a",
        created_at=infos[0].created_at,
    )
    assert infos[0].created_at.tzinfo is not None


def test_list_of_missing_directory_is_empty(tmp_path: Path) -> None:
    assert make_store(tmp_path / "absent").list() == []


def test_list_order_and_default_key(monkeypatch: pytest.MonkeyPatch, store: Keystore) -> None:
    base = datetime(2024, 5, 1, tzinfo=UTC)
    times = iter([base + timedelta(hours=2), base, base])
    monkeypatch.setattr(keystore_module, "_now", lambda: next(times))
    later = store.new_key("later")
    tied = sorted([store.new_key("tie 1"), store.new_key("tie 2")], key=lambda k: k.key_id)
    infos = store.list()
    assert [info.key_id for info in infos] == [tied[0].key_id, tied[1].key_id, later.key_id]
    assert store.default_key() == tied[0]


def test_new_key_is_a_stored_did_key(store: Keystore) -> None:
    key = store.new_key(label="cell 7")
    assert key.key_id.startswith("did:key:z6Mk")
    assert key.key_id.split("#", 1)[1] == key.controller.removeprefix("did:key:")
    assert store.get(key.key_id) == key
    assert store.list()[0].label == "cell 7"


@pytest.mark.parametrize(
    "key_id",
    [
        "../../escaped#key",
        "/etc/passwd",
        "did:key:z6Mk/../../../tmp/x#..",
        "..",
        "a\\..\\b#c\x00d",
    ],
)
def test_key_id_with_path_characters_stays_inside(
    tmp_path: Path, store_dir: Path, store: Keystore, key_id: str
) -> None:
    key = Ed25519Key(SEED, key_id)
    store.add(key)
    everything = sorted(tmp_path.rglob("*"))
    assert len(everything) == 2, everything
    assert everything[0] == store_dir
    path = everything[1]
    assert path.parent == store_dir
    assert path.suffix == ".json"
    assert all(c in "0123456789abcdef" for c in path.stem)
    assert store.get(key_id) == key
    assert key_id in store


def test_default_key_on_empty_store(store: Keystore) -> None:
    with pytest.raises(KeyNotFound, match="bpc key new"):
        store.default_key()


def test_empty_passphrase_cannot_encrypt(tmp_path: Path, key: Ed25519Key) -> None:
    with pytest.raises(KeystoreError, match="empty passphrase"):
        make_store(tmp_path, "").add(key)


def test_out_of_range_kdf_limits_are_refused(tmp_path: Path) -> None:
    with pytest.raises(KeystoreError, match="opslimit"):
        Keystore(tmp_path, "pw", kdf_opslimit=0)
    with pytest.raises(KeystoreError, match="memlimit"):
        Keystore(tmp_path, "pw", kdf_memlimit=1)


def test_file_systems_without_hard_links(
    monkeypatch: pytest.MonkeyPatch, store_dir: Path, store: Keystore, key: Ed25519Key
) -> None:
    def no_link(*_args: object) -> None:
        raise PermissionError(1, "hard links not supported")

    monkeypatch.setattr(keystore_module.os, "link", no_link)
    store.add(key)
    before = only_file(store_dir).read_bytes()
    with pytest.raises(KeystoreError, match="already"):
        store.add(key)
    assert only_file(store_dir).read_bytes() == before
    assert stat.S_IMODE(only_file(store_dir).stat().st_mode) == 0o600
    assert store.get(key.key_id) == key
