"""did:web for participants: DID ↔ URL mapping and DID documents listing Multikey keys.

A participant's did:web is derived from its one ``public_base_url``, so its identity moves
with its address and nothing else has to be configured.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any
from urllib.parse import quote, unquote, urlsplit

from credentials.errors import InvalidDID
from credentials.keys import PublicKey

DID_WEB_PREFIX = "did:web:"
# A DNS name or an IP literal, with an optional port: nothing that could smuggle user info,
# a query or another host into the URL we build.
_HOST = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?|\[[0-9A-Fa-f:.]+\])(?::\d{1,5})?")
DID_DOCUMENT_CONTEXT = ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1"]


def is_loopback_host(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def did_web_from_url(base_url: str) -> str:
    """``https://oem.example:8443/nodes/a`` → ``did:web:oem.example%3A8443:nodes:a``."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise InvalidDID(f"cannot derive a did:web from {base_url!r}: need an http(s) URL")
    host = parts.hostname
    if ":" in host:  # IPv6 literal: keep its brackets, percent-encoded with the rest
        host = quote(f"[{host}]", safe="")
    if parts.port is not None:
        host = f"{host}%3A{parts.port}"
    path = [quote(p, safe="") for p in parts.path.strip("/").split("/") if p]
    return DID_WEB_PREFIX + ":".join([host, *path])


def did_web_to_url(did: str, *, allow_http: bool = False) -> str:
    """The URL of a did:web's DID document.

    Always https, except for loopback hosts when the caller explicitly allows plain http
    (local test setups); a remote did:web over http would let anyone on the path swap keys.
    """
    if not did.startswith(DID_WEB_PREFIX):
        raise InvalidDID(f"not a did:web: {did!r}")
    segments = did[len(DID_WEB_PREFIX):].split(":")
    if not segments[0] or "#" in did or "?" in did or "/" in did:
        raise InvalidDID(f"malformed did:web: {did!r}")
    host = unquote(segments[0])
    if not _HOST.fullmatch(host):
        raise InvalidDID(f"malformed did:web host: {did!r}")
    hostname = urlsplit(f"//{host}").hostname or ""
    path = [unquote(s) for s in segments[1:]]
    if any(not p or p in (".", "..") or "/" in p for p in path):
        raise InvalidDID(f"malformed did:web path: {did!r}")
    scheme = "http" if allow_http and is_loopback_host(hostname) else "https"
    suffix = "/".join([*path, "did.json"]) if path else ".well-known/did.json"
    return f"{scheme}://{host}/{suffix}"


def build_did_document(
    did: str, keys: list[PublicKey], *, service: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A DID document whose keys are ``Multikey`` methods ``did#key-1``, ``did#key-2``, …"""
    methods = [
        {
            "id": f"{did}#key-{index}",
            "type": "Multikey",
            "controller": did,
            "publicKeyMultibase": key.multibase,
        }
        for index, key in enumerate(keys, start=1)
    ]
    ids = [m["id"] for m in methods]
    doc: dict[str, Any] = {
        "@context": list(DID_DOCUMENT_CONTEXT),
        "id": did,
        "verificationMethod": methods,
        "authentication": list(ids),
        "assertionMethod": list(ids),
        "capabilityInvocation": list(ids),
        "capabilityDelegation": list(ids),
    }
    if service:
        doc["service"] = service
    return doc
