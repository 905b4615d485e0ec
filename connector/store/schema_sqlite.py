"""The SQLite schema, as migrations (see ``migrations``): append new ones, never edit.

Tables are ``STRICT`` (types enforced, as PostgreSQL does); times are integer microseconds
since the epoch (UTC), JSON is text, booleans are 0/1. Credentials, agreements and the audit
log refuse UPDATE and DELETE by trigger: they are the data that must never be lost, and the
triggers hold even against a raw SQL session.
"""

from __future__ import annotations

from connector.store.migrations import Migration


def _append_only(table: str) -> str:
    return (
        f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table}\n"
        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END;\n"
        f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table}\n"
        f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END;\n"
    )


_STAMPS = """
    version INTEGER NOT NULL CHECK (version > 0),
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL"""

_INITIAL = f"""
CREATE TABLE batteries (
    did TEXT PRIMARY KEY NOT NULL,
    kind TEXT NOT NULL,
    parent_did TEXT REFERENCES batteries (did),
    key_id TEXT,
    properties TEXT NOT NULL,{_STAMPS}
) STRICT;
CREATE INDEX batteries_parent ON batteries (parent_did, did) WHERE parent_did IS NOT NULL;

CREATE TABLE credentials (
    digest TEXT PRIMARY KEY NOT NULL,
    battery_did TEXT NOT NULL REFERENCES batteries (did),
    position INTEGER NOT NULL CHECK (position >= 0),
    previous_digest TEXT,
    issuer TEXT NOT NULL,
    types TEXT NOT NULL,
    credential TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (battery_did, position)
) STRICT;
{_append_only("credentials")}
CREATE TABLE assets (
    id TEXT PRIMARY KEY NOT NULL,
    access_level TEXT NOT NULL,
    battery_did TEXT REFERENCES batteries (did),
    properties TEXT NOT NULL,{_STAMPS}
) STRICT;
CREATE INDEX assets_access_level ON assets (access_level, id);
CREATE INDEX assets_battery ON assets (battery_did, id);

CREATE TABLE policies (
    id TEXT PRIMARY KEY NOT NULL,
    policy TEXT NOT NULL,{_STAMPS}
) STRICT;

CREATE TABLE offers (
    id TEXT PRIMARY KEY NOT NULL,
    asset_id TEXT NOT NULL REFERENCES assets (id),
    offer TEXT NOT NULL,
    policy_id TEXT REFERENCES policies (id),{_STAMPS}
) STRICT;
CREATE INDEX offers_asset ON offers (asset_id, id);
CREATE INDEX offers_policy ON offers (policy_id, id);

CREATE TABLE negotiations (
    id TEXT PRIMARY KEY NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('provider', 'consumer')),
    state TEXT NOT NULL,
    counterparty_did TEXT NOT NULL,
    counterparty_address TEXT NOT NULL,
    counterparty_pid TEXT,
    asset_id TEXT,
    offer_id TEXT,
    offer TEXT,
    agreement_id TEXT,
    reason_kind TEXT,
    failed_constraint TEXT,
    reason_detail TEXT,{_STAMPS},
    lease_owner TEXT,
    lease_until INTEGER
) STRICT;
CREATE INDEX negotiations_state ON negotiations (state, updated_at, id);
CREATE INDEX negotiations_counterparty ON negotiations (counterparty_pid, id);

CREATE TABLE agreements (
    id TEXT PRIMARY KEY NOT NULL,
    asset_id TEXT NOT NULL,
    provider_did TEXT NOT NULL,
    consumer_did TEXT NOT NULL,
    agreement TEXT NOT NULL,
    signed_at INTEGER NOT NULL,
    negotiation_id TEXT,
    not_after INTEGER,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX agreements_asset ON agreements (asset_id, id);
CREATE INDEX agreements_consumer ON agreements (consumer_did, id);
{_append_only("agreements")}
CREATE TABLE transfers (
    id TEXT PRIMARY KEY NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('provider', 'consumer')),
    state TEXT NOT NULL,
    agreement_id TEXT NOT NULL REFERENCES agreements (id),
    asset_id TEXT NOT NULL,
    counterparty_did TEXT NOT NULL,
    counterparty_address TEXT NOT NULL,
    format TEXT NOT NULL,
    counterparty_pid TEXT,
    data_address TEXT,
    reason_kind TEXT,
    failed_constraint TEXT,
    reason_detail TEXT,{_STAMPS},
    lease_owner TEXT,
    lease_until INTEGER
) STRICT;
CREATE INDEX transfers_state ON transfers (state, updated_at, id);
CREATE INDEX transfers_agreement ON transfers (agreement_id, id);
CREATE INDEX transfers_counterparty ON transfers (counterparty_pid, id);

CREATE TABLE tokens (
    jti TEXT PRIMARY KEY NOT NULL,
    agreement_id TEXT NOT NULL REFERENCES agreements (id),
    consumer_did TEXT NOT NULL,
    asset_id TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    transfer_id TEXT,
    revoked INTEGER NOT NULL CHECK (revoked IN (0, 1)),{_STAMPS}
) STRICT;
CREATE INDEX tokens_agreement ON tokens (agreement_id, jti);

CREATE TABLE outbox (
    id TEXT PRIMARY KEY NOT NULL,
    process_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    target_url TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts INTEGER NOT NULL CHECK (attempts >= 0),
    next_attempt_at INTEGER NOT NULL,
    lease_owner TEXT,
    lease_until INTEGER,
    delivered_at INTEGER,
    failed_at INTEGER,
    last_error TEXT,
    created_at INTEGER NOT NULL
) STRICT;
CREATE INDEX outbox_due ON outbox (next_attempt_at, id)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX outbox_process ON outbox (process_id, id);

CREATE TABLE inbound_receipts (
    process_id TEXT NOT NULL,
    message_key TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    PRIMARY KEY (process_id, message_key)
) STRICT, WITHOUT ROWID;

CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    details TEXT NOT NULL
) STRICT;
CREATE INDEX audit_subject ON audit_log (subject_id, seq);
{_append_only("audit_log")}"""

_DATA_PLANE = f"""
ALTER TABLE negotiations ADD COLUMN agreement TEXT;
ALTER TABLE tokens ADD COLUMN audience TEXT;
ALTER TABLE tokens ADD COLUMN refresh_token_hash TEXT;
ALTER TABLE tokens ADD COLUMN previous_refresh_token_hash TEXT;
CREATE INDEX tokens_transfer ON tokens (transfer_id, jti) WHERE transfer_id IS NOT NULL;
CREATE INDEX tokens_refresh ON tokens (refresh_token_hash) WHERE refresh_token_hash IS NOT NULL;
CREATE INDEX tokens_previous_refresh ON tokens (previous_refresh_token_hash)
    WHERE previous_refresh_token_hash IS NOT NULL;
CREATE UNIQUE INDEX negotiations_peer_process
    ON negotiations (role, counterparty_did, counterparty_pid)
    WHERE counterparty_pid IS NOT NULL;
CREATE UNIQUE INDEX transfers_peer_process
    ON transfers (role, counterparty_did, counterparty_pid)
    WHERE counterparty_pid IS NOT NULL;

CREATE TABLE agreement_terminations (
    agreement_id TEXT PRIMARY KEY NOT NULL REFERENCES agreements (id),
    at INTEGER NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL
) STRICT;
{_append_only("agreement_terminations")}"""

_SEEN_TOKENS = """
CREATE TABLE seen_tokens (
    issuer TEXT NOT NULL,
    jti TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (issuer, jti)
) STRICT;
CREATE INDEX seen_tokens_expiry ON seen_tokens (expires_at);"""

_STATUS_LISTS = f"""
CREATE TABLE status_lists (
    url TEXT PRIMARY KEY NOT NULL,
    purpose TEXT NOT NULL CHECK (purpose IN ('revocation', 'suspension')),
    state TEXT NOT NULL,{_STAMPS}
) STRICT;"""

_PROOFS_AND_USAGE = f"""
CREATE TABLE wallet_credentials (
    id TEXT PRIMARY KEY NOT NULL,
    types TEXT NOT NULL,
    issuer TEXT NOT NULL,
    document TEXT NOT NULL,
    valid_until INTEGER,
    removed_at INTEGER,{_STAMPS}
) STRICT;

CREATE TABLE trust_registries (
    name TEXT PRIMARY KEY NOT NULL,
    document TEXT NOT NULL,{_STAMPS}
) STRICT;

CREATE TABLE agreement_evidence (
    agreement_id TEXT PRIMARY KEY NOT NULL REFERENCES agreements (id),
    consumer_did TEXT NOT NULL,
    evidence TEXT NOT NULL,{_STAMPS}
) STRICT;

CREATE TABLE agreement_usage (
    agreement_id TEXT PRIMARY KEY NOT NULL REFERENCES agreements (id),
    access_count INTEGER NOT NULL CHECK (access_count >= 0),
    last_access_at INTEGER,{_STAMPS}
) STRICT;

CREATE TABLE received_data (
    transfer_id TEXT PRIMARY KEY NOT NULL,
    agreement_id TEXT NOT NULL,
    provider_did TEXT NOT NULL,
    asset_id TEXT NOT NULL,
    data TEXT,
    received_at INTEGER NOT NULL,
    purge_at INTEGER,
    purged_at INTEGER,
    receipt TEXT,
    receipt_sent_at INTEGER,
    provider_address TEXT,{_STAMPS}
) STRICT;
CREATE INDEX received_data_purge ON received_data (purge_at) WHERE purged_at IS NULL;
CREATE INDEX received_data_agreement ON received_data (agreement_id);

CREATE TABLE deletion_receipts (
    id TEXT PRIMARY KEY NOT NULL,
    agreement_id TEXT NOT NULL,
    consumer_did TEXT NOT NULL,
    receipt TEXT NOT NULL,
    received_at INTEGER NOT NULL
) STRICT;
CREATE INDEX deletion_receipts_agreement ON deletion_receipts (agreement_id);
{_append_only("deletion_receipts")}"""

_HUB = f"""
CREATE TABLE hub_cells (
    id TEXT PRIMARY KEY NOT NULL,
    hub_id TEXT NOT NULL,
    battery_did TEXT NOT NULL,
    position INTEGER NOT NULL CHECK (position >= 0),
    cell_uid TEXT NOT NULL,
    cell_did TEXT NOT NULL,
    configuration TEXT NOT NULL CHECK (configuration IN ('verified', 'unverified')),
    observed_uid TEXT,{_STAMPS}
) STRICT;
CREATE INDEX hub_cells_battery ON hub_cells (battery_did, position);

CREATE TABLE hub_events (
    event_id TEXT PRIMARY KEY NOT NULL,
    hub_id TEXT NOT NULL,
    battery_did TEXT NOT NULL,
    kind TEXT NOT NULL,
    position INTEGER,
    observed_at INTEGER NOT NULL,
    event TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    batch_id TEXT
) STRICT;
CREATE INDEX hub_events_unbatched ON hub_events (battery_did, observed_at) WHERE batch_id IS NULL;
CREATE INDEX hub_events_batch ON hub_events (batch_id) WHERE batch_id IS NOT NULL;

CREATE TABLE hub_batches (
    id TEXT PRIMARY KEY NOT NULL,
    battery_did TEXT NOT NULL,
    hub_id TEXT NOT NULL,
    merkle_root TEXT NOT NULL,
    tree_size INTEGER NOT NULL CHECK (tree_size > 0),
    event_ids TEXT NOT NULL,
    first_event_at INTEGER NOT NULL,
    last_event_at INTEGER NOT NULL,
    closed_at INTEGER NOT NULL,
    credential_digest TEXT,{_STAMPS}
) STRICT;
CREATE INDEX hub_batches_battery ON hub_batches (battery_did, closed_at);
CREATE INDEX hub_batches_uncredentialed ON hub_batches (closed_at)
    WHERE credential_digest IS NULL;"""

_HUB_EVENT_GROUPS = """
CREATE TABLE hub_event_groups (
    id INTEGER PRIMARY KEY,
    hub_id TEXT NOT NULL,
    battery_did TEXT NOT NULL,
    events TEXT NOT NULL,
    received_at INTEGER NOT NULL
) STRICT;

CREATE TABLE hub_event_keys (
    seq INTEGER NOT NULL CHECK (seq >= 0),
    event_id TEXT NOT NULL,
    group_id INTEGER NOT NULL REFERENCES hub_event_groups (id),
    item INTEGER NOT NULL CHECK (item >= 0),
    batch_id TEXT,
    PRIMARY KEY (seq, event_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX hub_event_keys_unbatched ON hub_event_keys (group_id) WHERE batch_id IS NULL;
CREATE INDEX hub_event_keys_batch ON hub_event_keys (batch_id, event_id)
    WHERE batch_id IS NOT NULL;

INSERT INTO hub_event_groups (id, hub_id, battery_did, events, received_at)
    SELECT rowid, hub_id, battery_did, '[' || event || ']', received_at FROM hub_events;
INSERT INTO hub_event_keys (seq, event_id, group_id, item, batch_id)
    SELECT COALESCE(json_extract(event, '$.seq'), 0), event_id, rowid, 0, batch_id
    FROM hub_events;
DROP TABLE hub_events;"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial", _INITIAL),
    # Data plane: refresh-token hashes, the agreement on its negotiation, provider-side
    # agreement termination, and one process per peer PID (races between replicas on PG).
    Migration(2, "data-plane", _DATA_PLANE),
    # Replay protection shared by replicas: a request token's (issuer, jti) while it lives.
    Migration(3, "seen-tokens", _SEEN_TOKENS),
    # The Bitstring Status Lists this node publishes for the credentials it issues.
    Migration(4, "status-lists", _STATUS_LISTS),
    # Role proofs and usage control: the node's wallet (credentials it presents), its trust
    # registry, what an agreement relied on, fetch counts, data received under agreements
    # (purged when they end) and the deletion receipts consumers send.
    Migration(5, "proofs-and-usage", _PROOFS_AND_USAGE),
    # The hub bridge: registered cells per pack position, cell events stored exactly once,
    # and the Merkle batches whose credentials go into the passport.
    Migration(6, "hub", _HUB),
    # Hub events at ingest rate: one row per message and pack holds the events' JSON, and a
    # small key row per event, keyed by (hub sequence number, event id) so that new events
    # land together at the end of the index instead of one random page each (see
    # ``connector.store.hub_events``); the rows of migration 6 move over.
    Migration(7, "hub-event-groups", _HUB_EVENT_GROUPS),
)
