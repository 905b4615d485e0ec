"""What the passport page is addressed by: the battery DID, or its short *passport id*.

The passport id is the battery DID's method-specific id when the DID is a ``did:key``
(``z6Mk…``, the multibase public key): it is unique per battery because the key is, it can
be turned back into the DID without a lookup table (the store has no index but the DID), and
it keeps the QR code small enough to scan from a worn label. A repurposed battery gets a new
DID (Art. 77(6)) and so a new passport id, as DIN DKE SPEC 99100 asks of a new passport.
Batteries with other DIDs (``did:web:…``) are addressed by the full DID. The public
``passportIdentifier`` attribute (a ``urn:uuid``) of the manufacturing credential is shown on the
page; it is not an address, because finding a battery by it would need an index the store
does not keep.

Every URL the page names derives from the node's ``public_base_url``, never from the request's
``Host`` header, so a spoofed header cannot put another site's address into a QR code.
"""

from __future__ import annotations

import re
from urllib.parse import quote

DID_KEY_PREFIX = "did:key:"
_FINGERPRINT = re.compile(r"z[1-9A-HJ-NP-Za-km-z]{20,200}")
_DID = re.compile(r"did:[a-z0-9]+:[A-Za-z0-9._:%-]{1,2000}")


class UnknownReference(ValueError):
    """The path segment is neither a DID nor a passport id."""


def passport_id(battery_did: str) -> str:
    """The short id of ``battery_did``'s page: the did:key fingerprint, else the DID."""
    if battery_did.startswith(DID_KEY_PREFIX):
        fingerprint = battery_did.removeprefix(DID_KEY_PREFIX)
        if _FINGERPRINT.fullmatch(fingerprint):
            return fingerprint
    return battery_did


def battery_did(reference: str) -> str:
    """The battery DID a page path segment names (a DID or a passport id)."""
    if _FINGERPRINT.fullmatch(reference):
        return DID_KEY_PREFIX + reference
    if _DID.fullmatch(reference):
        return reference
    raise UnknownReference(f"{reference[:80]!r} is neither a battery DID nor a passport id")


def page_path(battery: str) -> str:
    return "/passport/" + quote(passport_id(battery), safe=":")


def page_url(public_base_url: str, battery: str) -> str:
    """The URL a QR code carries: ``<public_base_url>/passport/<passport id>``."""
    return public_base_url.rstrip("/") + page_path(battery)


__all__ = ["UnknownReference", "battery_did", "page_path", "page_url", "passport_id"]
