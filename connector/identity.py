"""The node's own identity: its DID, the key it signs with, and the DID document it publishes.

A participant is a ``did:web`` derived from its ``public_base_url`` (so the identity moves
with the address and nothing else needs configuring); ``did:key`` is there for local setups
and the standard VC test tooling, which resolves issuers by ``did:key``.

The private key lives in the encrypted keystore under ``<data_dir>/keys``. The keystore
names keys by ``did:key`` ids, so the node key is stored as a did:key (labelled
``NODE_KEY_LABEL``) and, for did:web, a second ``Ed25519Key`` is made from the same seed with
the key id ``did:web:…#key-1``: one key, two names, and switching ``identity`` never strands
or replaces it.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import aiohttp

from connector.config import NodeConfig
from credentials import DIDResolver, HttpDIDFetcher, Verifier
from credentials.did_key import resolve_did_key
from credentials.did_web import build_did_document
from credentials.errors import KeystoreError
from credentials.keys import Ed25519Key
from credentials.keystore import Keystore
from credentials.resolver import DIDFetcher
from credentials.status_list import StatusChecker, StatusListFetcher

NODE_KEY_LABEL = "node identity"
KEYSTORE_DIR = "keys"


class IdentityError(Exception):
    """The node cannot take up its identity (no passphrase, wrong passphrase, bad keystore)."""


@dataclass(frozen=True, slots=True)
class NodeIdentity:
    """Who the node is. ``signing_key.key_id`` is what its proofs name as verificationMethod."""

    did: str
    signing_key: Ed25519Key
    #: The id under which the keystore holds the key (always the did:key form).
    stored_key_id: str
    #: The node's public origin (``config.public_base_url``); for did:web it puts the DCP
    #: ``CredentialService`` (``<base>/dcp``) into the DID document. A did:key document is
    #: fixed by the key and lists no services, so DCP role proofs need a did:web node.
    public_base_url: str | None = None

    @property
    def verification_method(self) -> str:
        return self.signing_key.key_id

    def did_document(self) -> dict[str, Any]:
        """The DID document: Multikey ``did#key-1`` for did:web, the derived one for did:key.

        A did:key document is fully determined by the key, so it is the method's own
        (fragment = the multibase key), never one we invent.
        """
        if self.did.startswith("did:key:"):
            return resolve_did_key(self.did)
        return build_did_document(self.did, [self.signing_key.public_key],
                                  service=self.services())

    def services(self) -> list[dict[str, Any]]:
        """The DID document's ``service`` entries: the DCP credential service, for verifiers
        to query this node's wallet (``connector.dcp.credential_service``)."""
        if self.public_base_url is None or self.did.startswith("did:key:"):
            return []
        return [{"id": f"{self.did}#credential-service", "type": "CredentialService",
                 "serviceEndpoint": f"{self.public_base_url.rstrip('/')}/dcp"}]


def keystore_dir(config: NodeConfig) -> Path:
    return config.data_dir / KEYSTORE_DIR


def load_identity(
    config: NodeConfig, *, environ: Mapping[str, str] | None = None
) -> NodeIdentity:
    """Open the node key (creating it at first start) and name it per ``config.identity``.

    Blocking (argon2id key derivation): call it from a thread when a loop is running.
    """
    environ = os.environ if environ is None else environ
    variable = config.keystore_passphrase_env
    passphrase = environ.get(variable)
    if not passphrase:
        raise IdentityError(
            f"the node's keystore ({keystore_dir(config)}) needs a passphrase: set the"
            f" environment variable {variable} (named by the keystore_passphrase_env setting)"
        )
    keystore = Keystore(keystore_dir(config), passphrase)
    try:
        stored = _node_key(keystore)
    except KeystoreError as exc:
        raise IdentityError(f"cannot open the node key in {keystore.directory}: {exc}") from exc
    if config.identity == "did:key":
        return NodeIdentity(stored.controller, stored, stored.key_id)
    did = config.did_web
    return NodeIdentity(did, Ed25519Key(stored.seed, f"{did}#key-1"), stored.key_id,
                        config.public_base_url)


def _node_key(keystore: Keystore) -> Ed25519Key:
    """The oldest key labelled as the node key; a new one at first start.

    Before adding a key to a keystore that already holds others, the passphrase must open
    one of them, so one store never ends up with keys under two passphrases.
    """
    infos = keystore.list()
    for info in infos:
        if info.label == NODE_KEY_LABEL:
            return keystore.get(info.key_id)
    if infos:
        keystore.get(infos[0].key_id)
    return keystore.new_key(NODE_KEY_LABEL)


class _OwnDocumentFetcher:
    """did:web fetcher that knows the node's own document and fetches every other one.

    The node verifying its own credentials must not depend on reaching itself through its
    public URL (a proxy, a firewall or a not-yet-started listener may be in the way), and
    the answer would be the document it already holds anyway.
    """

    def __init__(self, identity: NodeIdentity, fallback: DIDFetcher) -> None:
        self._did = identity.did
        self._document = identity.did_document()
        self._fallback = fallback

    async def __call__(self, did: str) -> dict[str, Any]:
        if did == self._did:
            return copy.deepcopy(self._document)
        return await self._fallback(did)


def node_verifier(
    identity: NodeIdentity, session: aiohttp.ClientSession, *, allow_http_loopback: bool,
    status_fetcher: StatusListFetcher | None = None,
    status_max_age_s: float = 300.0,
    status_unavailable: Literal["fail", "warn"] = "fail",
) -> Verifier:
    """The verifier the node checks credentials and presentations with.

    did:web documents of other parties are fetched with the node's shared HTTP session;
    plain http only for loopback hosts and only when the node itself is a local setup. With
    ``status_fetcher`` every ``credentialStatus`` is checked against its (verified, cached)
    status list, and a status that cannot be established fails the credential.
    """
    fetcher = HttpDIDFetcher(session, allow_http_loopback=allow_http_loopback)
    resolver = DIDResolver(web_fetcher=_OwnDocumentFetcher(identity, fetcher))
    checker = (StatusChecker(status_fetcher, resolver=resolver, max_age_s=status_max_age_s,
                             on_unavailable=status_unavailable)
               if status_fetcher is not None else None)
    return Verifier(resolver, status_checker=checker)
