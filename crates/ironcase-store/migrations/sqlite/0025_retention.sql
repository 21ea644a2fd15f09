-- Retention: how long each organisation keeps each kind of its data (no
-- row: forever), the incidents a legal hold protects from it, and how far
-- an audit chain was pruned (the last removed entry's sequence number and
-- hash, so the rest of the chain still links, and the tree's stored hashes
-- stay). `job_lease` lets one node at a time run a background job.
create table retention_policy (
    organization_id text not null,
    kind text not null,
    days integer not null,
    updated_at integer not null,
    primary key (organization_id, kind)
);

create table legal_hold (
    organization_id text not null,
    incident_id text not null,
    reason text not null,
    set_by text,
    set_at integer not null,
    primary key (organization_id, incident_id)
);

create table audit_pruned (
    organization_id text primary key,
    seq integer not null,
    hash text not null,
    at integer not null
);

create table job_lease (
    name text primary key,
    holder text not null,
    until integer not null
);

create index evidence_created on evidence (organization_id, created_at);
create index incident_closed on incident (organization_id, closed_at) where closed_at is not null;
create index session_ended on session (organization_id, expires_at);

-- Read auditing: every read of an incident, its evidence and indicators
-- recorded in the audit log (off by default).
alter table organization add column audit_reads integer not null default 0;

-- Personal data breaches (GDPR Art. 33): when the organisation became
-- aware, when (and under what reference) the regulator was told, and which
-- deadline warnings were raised (1: 48 h, 2: 66 h, 3: overdue).
create table incident_breach (
    organization_id text not null,
    incident_id text not null,
    aware_at integer not null,
    notified_at integer,
    reference text,
    warned integer not null default 0,
    set_by text,
    updated_at integer not null,
    primary key (organization_id, incident_id)
);
create index incident_breach_open on incident_breach (aware_at) where notified_at is null;

-- Data-subject requests: who asked about whom, when the answer is due (30
-- days), and, for access, the archive (sealed under the master key) until
-- it is downloaded, once, or expires.
create table privacy_request (
    organization_id text not null,
    request_id text not null,
    kind text not null,
    subject_id text,
    subject_email text,
    status text not null,
    requested_by text,
    created_at integer not null,
    due_at integer not null,
    completed_at integer,
    archive blob,
    archive_sha256 text,
    archive_expires_at integer,
    downloaded_at integer,
    primary key (organization_id, request_id)
);
create index privacy_request_created on privacy_request (organization_id, created_at, request_id);

-- Each chain's latest signed checkpoint beside its head, so the checkpoint
-- job reads one row per tenant instead of grouping every checkpoint.
alter table audit_head add column signed_size integer not null default 0;
alter table audit_head add column signed_at integer;
update audit_head set
    signed_size = coalesce((select max(k.size) from audit_checkpoint k where k.organization_id = audit_head.organization_id), 0),
    signed_at = (select max(k.at) from audit_checkpoint k where k.organization_id = audit_head.organization_id);
