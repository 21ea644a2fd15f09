-- Evidence files and their chain of custody. The bytes live in blob storage,
-- encrypted under the organisation's data key; this is what is known of them.

-- Per-organisation data keys, each sealed (AES-256-GCM) under the master key
-- with the organisation and key id bound as associated data.
create table data_key (
    organization_id text not null,
    data_key_id text not null,
    wrapped blob not null,
    created_at integer not null,
    primary key (organization_id, data_key_id)
);

create table evidence (
    organization_id text not null,
    evidence_id text not null,
    incident_id text not null,
    name text not null,
    kind text not null,
    description text,
    size integer not null,
    sha256 text not null,
    collected_by text,
    collected_at integer,
    uploaded_by text not null,
    created_at integer not null,
    data_key_id text not null,
    -- where the encrypted bytes are; null once deleted (the row is the tombstone)
    blob_key text,
    deleted_at integer,
    deleted_by text,
    delete_reason text,
    primary key (organization_id, evidence_id)
);
create index evidence_incident on evidence (organization_id, incident_id, created_at, evidence_id);

-- Append-only: one row per custody step, numbered per evidence.
create table custody (
    organization_id text not null,
    evidence_id text not null,
    seq integer not null,
    action text not null,
    actor_id text,
    actor_kind text not null,
    at integer not null,
    source_ip text,
    reason text,
    to_party text,
    primary key (organization_id, evidence_id, seq)
);
