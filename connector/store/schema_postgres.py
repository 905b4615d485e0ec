"""The PostgreSQL schema, as migrations (see ``migrations``): append new ones, never edit.

Created in the store's schema (``search_path``). Keys use the ``"C"`` collation so keyset
paging orders exactly as on SQLite (by code point), whatever the database's locale. JSON is
``jsonb``. Credentials, agreements and the audit log refuse UPDATE, DELETE and TRUNCATE by
trigger: they are the data that must never be lost.
"""

from __future__ import annotations

from connector.store.migrations import Migration


def _append_only(table: str) -> str:
    return (
        f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}\n"
        "    FOR EACH ROW EXECUTE FUNCTION bpc_refuse_change();\n"
        f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}\n"
        "    FOR EACH STATEMENT EXECUTE FUNCTION bpc_refuse_change();\n"
    )


_KEY = 'TEXT COLLATE "C"'
_STAMPS = """
    version BIGINT NOT NULL CHECK (version > 0),
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL"""

_INITIAL = f"""
CREATE FUNCTION bpc_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'restrict_violation';
END
$$;

CREATE TABLE batteries (
    did {_KEY} PRIMARY KEY,
    kind TEXT NOT NULL,
    parent_did {_KEY} REFERENCES batteries (did),
    key_id TEXT,
    properties JSONB NOT NULL,{_STAMPS}
);
CREATE INDEX batteries_parent ON batteries (parent_did, did) WHERE parent_did IS NOT NULL;

CREATE TABLE credentials (
    digest {_KEY} PRIMARY KEY,
    battery_did {_KEY} NOT NULL REFERENCES batteries (did),
    position BIGINT NOT NULL CHECK (position >= 0),
    previous_digest TEXT,
    issuer TEXT NOT NULL,
    types JSONB NOT NULL,
    credential TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    UNIQUE (battery_did, position)
);
{_append_only("credentials")}
CREATE TABLE assets (
    id {_KEY} PRIMARY KEY,
    access_level TEXT NOT NULL,
    battery_did {_KEY} REFERENCES batteries (did),
    properties JSONB NOT NULL,{_STAMPS}
);
CREATE INDEX assets_access_level ON assets (access_level, id);
CREATE INDEX assets_battery ON assets (battery_did, id);

CREATE TABLE policies (
    id {_KEY} PRIMARY KEY,
    policy JSONB NOT NULL,{_STAMPS}
);

CREATE TABLE offers (
    id {_KEY} PRIMARY KEY,
    asset_id {_KEY} NOT NULL REFERENCES assets (id),
    offer JSONB NOT NULL,
    policy_id {_KEY} REFERENCES policies (id),{_STAMPS}
);
CREATE INDEX offers_asset ON offers (asset_id, id);
CREATE INDEX offers_policy ON offers (policy_id, id);

CREATE TABLE negotiations (
    id {_KEY} PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('provider', 'consumer')),
    state TEXT NOT NULL,
    counterparty_did TEXT NOT NULL,
    counterparty_address TEXT NOT NULL,
    counterparty_pid TEXT,
    asset_id TEXT,
    offer_id TEXT,
    offer JSONB,
    agreement_id TEXT,
    reason_kind TEXT,
    failed_constraint TEXT,
    reason_detail TEXT,{_STAMPS},
    lease_owner TEXT,
    lease_until TIMESTAMPTZ
);
CREATE INDEX negotiations_state ON negotiations (state, updated_at, id);
CREATE INDEX negotiations_counterparty ON negotiations (counterparty_pid, id);

CREATE TABLE agreements (
    id {_KEY} PRIMARY KEY,
    asset_id TEXT NOT NULL,
    provider_did TEXT NOT NULL,
    consumer_did TEXT NOT NULL,
    agreement JSONB NOT NULL,
    signed_at TIMESTAMPTZ NOT NULL,
    negotiation_id TEXT,
    not_after TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX agreements_asset ON agreements (asset_id, id);
CREATE INDEX agreements_consumer ON agreements (consumer_did, id);
{_append_only("agreements")}
CREATE TABLE transfers (
    id {_KEY} PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('provider', 'consumer')),
    state TEXT NOT NULL,
    agreement_id {_KEY} NOT NULL REFERENCES agreements (id),
    asset_id TEXT NOT NULL,
    counterparty_did TEXT NOT NULL,
    counterparty_address TEXT NOT NULL,
    format TEXT NOT NULL,
    counterparty_pid TEXT,
    data_address JSONB,
    reason_kind TEXT,
    failed_constraint TEXT,
    reason_detail TEXT,{_STAMPS},
    lease_owner TEXT,
    lease_until TIMESTAMPTZ
);
CREATE INDEX transfers_state ON transfers (state, updated_at, id);
CREATE INDEX transfers_agreement ON transfers (agreement_id, id);
CREATE INDEX transfers_counterparty ON transfers (counterparty_pid, id);

CREATE TABLE tokens (
    jti {_KEY} PRIMARY KEY,
    agreement_id {_KEY} NOT NULL REFERENCES agreements (id),
    consumer_did TEXT NOT NULL,
    asset_id TEXT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    transfer_id TEXT,
    revoked BOOLEAN NOT NULL,{_STAMPS}
);
CREATE INDEX tokens_agreement ON tokens (agreement_id, jti);

CREATE TABLE outbox (
    id {_KEY} PRIMARY KEY,
    process_id {_KEY} NOT NULL,
    kind TEXT NOT NULL,
    target_url TEXT NOT NULL,
    body JSONB NOT NULL,
    attempts BIGINT NOT NULL CHECK (attempts >= 0),
    next_attempt_at TIMESTAMPTZ NOT NULL,
    lease_owner TEXT,
    lease_until TIMESTAMPTZ,
    delivered_at TIMESTAMPTZ,
    failed_at TIMESTAMPTZ,
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX outbox_due ON outbox (next_attempt_at, id)
    WHERE delivered_at IS NULL AND failed_at IS NULL;
CREATE INDEX outbox_process ON outbox (process_id, id);

CREATE TABLE inbound_receipts (
    process_id TEXT NOT NULL,
    message_key TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (process_id, message_key)
);

CREATE TABLE audit_log (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at TIMESTAMPTZ NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject_id TEXT NOT NULL,
    details JSONB NOT NULL
);
CREATE INDEX audit_subject ON audit_log (subject_id, seq);
{_append_only("audit_log")}"""

_DATA_PLANE = f"""
ALTER TABLE negotiations ADD COLUMN agreement JSONB;
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
    agreement_id {_KEY} PRIMARY KEY REFERENCES agreements (id),
    at TIMESTAMPTZ NOT NULL,
    actor TEXT NOT NULL,
    reason TEXT NOT NULL
);
{_append_only("agreement_terminations")}"""

_SEEN_TOKENS = """
CREATE TABLE seen_tokens (
    issuer TEXT COLLATE "C" NOT NULL,
    jti TEXT COLLATE "C" NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (issuer, jti)
);
CREATE INDEX seen_tokens_expiry ON seen_tokens (expires_at);"""

_STATUS_LISTS = f"""
CREATE TABLE status_lists (
    url TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    purpose TEXT NOT NULL CHECK (purpose IN ('revocation', 'suspension')),
    state JSONB NOT NULL,{_STAMPS}
);"""

_PROOFS_AND_USAGE = f"""
CREATE TABLE wallet_credentials (
    id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    types JSONB NOT NULL,
    issuer TEXT NOT NULL,
    document JSONB NOT NULL,
    valid_until TIMESTAMPTZ,
    removed_at TIMESTAMPTZ,{_STAMPS}
);

CREATE TABLE trust_registries (
    name TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    document JSONB NOT NULL,{_STAMPS}
);

CREATE TABLE agreement_evidence (
    agreement_id TEXT COLLATE "C" PRIMARY KEY NOT NULL REFERENCES agreements (id),
    consumer_did TEXT NOT NULL,
    evidence JSONB NOT NULL,{_STAMPS}
);

CREATE TABLE agreement_usage (
    agreement_id TEXT COLLATE "C" PRIMARY KEY NOT NULL REFERENCES agreements (id),
    access_count BIGINT NOT NULL CHECK (access_count >= 0),
    last_access_at TIMESTAMPTZ,{_STAMPS}
);

CREATE TABLE received_data (
    transfer_id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    agreement_id TEXT NOT NULL,
    provider_did TEXT NOT NULL,
    asset_id TEXT NOT NULL,
    data JSONB,
    received_at TIMESTAMPTZ NOT NULL,
    purge_at TIMESTAMPTZ,
    purged_at TIMESTAMPTZ,
    receipt JSONB,
    receipt_sent_at TIMESTAMPTZ,
    provider_address TEXT,{_STAMPS}
);
CREATE INDEX received_data_purge ON received_data (purge_at) WHERE purged_at IS NULL;
CREATE INDEX received_data_agreement ON received_data (agreement_id);

CREATE TABLE deletion_receipts (
    id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    agreement_id TEXT NOT NULL,
    consumer_did TEXT NOT NULL,
    receipt JSONB NOT NULL,
    received_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX deletion_receipts_agreement ON deletion_receipts (agreement_id);
{_append_only("deletion_receipts")}"""

_HUB = f"""
CREATE TABLE hub_cells (
    id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    hub_id TEXT NOT NULL,
    battery_did TEXT NOT NULL,
    position BIGINT NOT NULL CHECK (position >= 0),
    cell_uid TEXT NOT NULL,
    cell_did TEXT NOT NULL,
    configuration TEXT NOT NULL CHECK (configuration IN ('verified', 'unverified')),
    observed_uid TEXT,{_STAMPS}
);
CREATE INDEX hub_cells_battery ON hub_cells (battery_did, position);

CREATE TABLE hub_events (
    event_id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    hub_id TEXT NOT NULL,
    battery_did TEXT NOT NULL,
    kind TEXT NOT NULL,
    position BIGINT,
    observed_at TIMESTAMPTZ NOT NULL,
    event JSONB NOT NULL,
    received_at TIMESTAMPTZ NOT NULL,
    batch_id TEXT
);
CREATE INDEX hub_events_unbatched ON hub_events (battery_did, observed_at) WHERE batch_id IS NULL;
CREATE INDEX hub_events_batch ON hub_events (batch_id) WHERE batch_id IS NOT NULL;

CREATE TABLE hub_batches (
    id TEXT COLLATE "C" PRIMARY KEY NOT NULL,
    battery_did TEXT NOT NULL,
    hub_id TEXT NOT NULL,
    merkle_root TEXT NOT NULL,
    tree_size BIGINT NOT NULL CHECK (tree_size > 0),
    event_ids JSONB NOT NULL,
    first_event_at TIMESTAMPTZ NOT NULL,
    last_event_at TIMESTAMPTZ NOT NULL,
    closed_at TIMESTAMPTZ NOT NULL,
    credential_digest TEXT,{_STAMPS}
);
CREATE INDEX hub_batches_battery ON hub_batches (battery_did, closed_at);
CREATE INDEX hub_batches_uncredentialed ON hub_batches (closed_at)
    WHERE credential_digest IS NULL;"""

_HUB_EVENT_GROUPS = """
CREATE TABLE hub_event_groups (
    id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    hub_id TEXT NOT NULL,
    battery_did TEXT NOT NULL,
    events TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE hub_event_keys (
    seq BIGINT NOT NULL CHECK (seq >= 0),
    event_id TEXT COLLATE "C" NOT NULL,
    group_id BIGINT NOT NULL REFERENCES hub_event_groups (id),
    item INTEGER NOT NULL CHECK (item >= 0),
    batch_id TEXT COLLATE "C",
    PRIMARY KEY (seq, event_id)
);
CREATE INDEX hub_event_keys_unbatched ON hub_event_keys (group_id) WHERE batch_id IS NULL;
CREATE INDEX hub_event_keys_batch ON hub_event_keys (batch_id, event_id)
    WHERE batch_id IS NOT NULL;

INSERT INTO hub_event_groups (id, hub_id, battery_did, events, received_at)
    SELECT row_number() OVER (ORDER BY event_id), hub_id, battery_did,
           '[' || event::text || ']', received_at
    FROM hub_events;
INSERT INTO hub_event_keys (seq, event_id, group_id, item, batch_id)
    SELECT COALESCE((event->>'seq')::bigint, 0), event_id,
           row_number() OVER (ORDER BY event_id), 0, batch_id
    FROM hub_events;
SELECT setval(pg_get_serial_sequence('hub_event_groups', 'id'),
              COALESCE((SELECT MAX(id) FROM hub_event_groups), 0) + 1, false);
DROP TABLE hub_events;"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "initial", _INITIAL),
    # Data plane: refresh-token hashes, the agreement on its negotiation, provider-side
    # agreement termination, and one process per peer PID (races between replicas).
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
