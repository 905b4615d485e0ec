"""What the data plane serves for an asset: its passport data set, as one JSON document.

An asset is "the <access level> data of battery X" (``management.assets``); its data source is
either inline JSON given by the operator or the battery's passport credentials in the store
(optionally only some credential types). The document says which asset and battery it is so
a consumer that stores it keeps the context; credentials are served as stored (secured JSON or
JWT), so the consumer verifies them itself instead of trusting this node.
"""

from __future__ import annotations

from typing import Any

from connector.store import AssetRecord, Reader


async def asset_content(reader: Reader, asset: AssetRecord) -> dict[str, Any]:
    """The JSON document served for ``asset``."""
    props = asset.properties
    document: dict[str, Any] = {
        "assetId": asset.id,
        "batteryDid": props.get("batteryDid", asset.battery_did),
        "accessLevel": asset.access_level,
        "title": props.get("title"),
    }
    source = props.get("dataSource") or {}
    if source.get("kind") == "inline":
        document["data"] = source.get("data")
    elif source.get("kind") == "passport-credentials" and asset.battery_did:
        wanted = set(source.get("credentialTypes") or [])
        entries = await reader.passport(asset.battery_did)
        document["credentials"] = [
            entry.credential for entry in entries if not wanted or wanted & set(entry.types)
        ]
    else:
        document["data"] = None
    return document


__all__ = ["asset_content"]
