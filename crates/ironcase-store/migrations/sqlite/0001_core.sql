-- Ironcase core schema (SQLite).
-- Conventions: lowercase SQL, singular table names, `<table>_id` keys holding the
-- prefixed external id, times as integer Unix milliseconds. Every table holding
-- tenant data carries `organization_id`, and it leads every index, so that each
-- query is scoped to one tenant by construction.

create table organization (
    organization_id text primary key,
    slug text not null unique,
    name text not null,
    plan text not null,
    status text not null,
    parent_id text references organization (organization_id),
    -- last issued incident number (INC-n); bumped in the creating transaction
    incident_seq integer not null default 0,
    created_at integer not null
);

create table user (
    user_id text primary key,
    email text not null unique,
    name text not null,
    password_hash text not null,
    -- platform operator: may manage organisations; lives outside any tenant
    is_operator integer not null default 0,
    created_at integer not null
);

create table membership (
    organization_id text not null references organization (organization_id),
    user_id text not null references user (user_id),
    role text not null,
    created_at integer not null,
    primary key (organization_id, user_id)
);
create index membership_user on membership (user_id, created_at);

-- A login: access tokens carry its id, so revoking it stops them at once.
create table session (
    session_id text primary key,
    organization_id text not null,
    user_id text not null,
    created_at integer not null,
    expires_at integer not null,
    revoked_at integer,
    revoked_reason text
);
create index session_member on session (organization_id, user_id);

-- Refresh tokens are stored only as SHA-256 hashes; one row per issued token so
-- that presenting a used one can be recognised as reuse.
create table refresh_token (
    token_hash text primary key,
    session_id text not null references session (session_id),
    created_at integer not null,
    expires_at integer not null,
    used_at integer
);
create index refresh_token_session on refresh_token (session_id);

create table login_failure (
    email text not null,
    at integer not null
);
create index login_failure_email on login_failure (email, at);

create table api_key (
    api_key_id text primary key,
    organization_id text not null references organization (organization_id),
    name text not null,
    role text not null,
    -- SHA-256 of the whole key; the key itself is never stored
    key_hash text not null unique,
    -- first characters of the key, to recognise it in a list
    key_prefix text not null,
    created_by text not null,
    created_at integer not null,
    expires_at integer,
    revoked_at integer,
    last_used_at integer
);
create index api_key_org on api_key (organization_id, created_at);

-- Token-signing keys, encrypted under the master key, shared by every node.
create table signing_key (
    signing_key_id text primary key,
    algorithm text not null,
    ciphertext blob not null,
    created_at integer not null
);

create table incident (
    organization_id text not null references organization (organization_id),
    incident_id text not null,
    number integer not null,
    title text not null,
    description text not null,
    severity text not null,
    category text not null,
    status text not null,
    resolution text,
    tlp text not null,
    tags text not null, -- JSON array, mirrored in incident_tag for filtering
    assignee_id text,
    reporter_id text not null,
    created_at integer not null,
    updated_at integer not null,
    acknowledged_at integer,
    contained_at integer,
    resolved_at integer,
    closed_at integer,
    -- soft delete: gone from reads, kept for the audit trail and timeline
    deleted_at integer,
    version integer not null,
    primary key (organization_id, incident_id),
    unique (organization_id, number)
);
-- Each list filter has an index that also yields the list order, so a page
-- reads about as many rows as it returns whatever the filter's selectivity.
create index incident_created on incident (organization_id, created_at, incident_id);
create index incident_updated on incident (organization_id, updated_at, incident_id);
create index incident_status on incident (organization_id, status, created_at, incident_id);
create index incident_severity on incident (organization_id, severity, created_at, incident_id);
create index incident_category on incident (organization_id, category, created_at, incident_id);
create index incident_assignee on incident (organization_id, assignee_id, created_at, incident_id);

create table incident_tag (
    organization_id text not null,
    tag text not null,
    incident_id text not null,
    primary key (organization_id, tag, incident_id)
);

create table comment (
    organization_id text not null,
    comment_id text not null,
    incident_id text not null,
    author_id text not null,
    body text not null,
    created_at integer not null,
    primary key (organization_id, comment_id)
);

-- The organisation's events: the incident timeline, and the outbox that live
-- updates and webhooks will read by cursor. `event_id` only grows.
create table event (
    event_id integer primary key autoincrement,
    organization_id text not null,
    incident_id text,
    type text not null,
    actor_id text,
    data text not null,
    created_at integer not null
);
create index event_incident on event (organization_id, incident_id, event_id);

-- Append-only, hash-chained per organisation (`platform` for operator actions).
create table audit_log (
    organization_id text not null,
    seq integer not null,
    at integer not null,
    actor_id text,
    actor_kind text not null,
    action text not null,
    resource_type text,
    resource_id text,
    outcome text not null,
    request_id text,
    source_ip text,
    user_agent text,
    details text not null,
    prev_hash text not null,
    hash text not null,
    primary key (organization_id, seq)
);
create index audit_log_action on audit_log (organization_id, action, seq);
create index audit_log_actor on audit_log (organization_id, actor_id, seq);
create index audit_log_resource on audit_log (organization_id, resource_type, resource_id, seq);

-- The newest entry of each chain, written with it. Lets verification notice a
-- removed tail, which the chain alone cannot show.
create table audit_head (
    organization_id text primary key,
    seq integer not null,
    hash text not null
);
