-- The whole schema for PostgreSQL: the same tables and columns as SQLite's
-- migrations 0001–0011 leave (times are bigint Unix milliseconds, ids are
-- prefixed text), plus row-level security on every table that holds tenant
-- data. Applied by the owner of the database; the application works as the
-- role `ironcase_app`, which owns nothing and so cannot bypass the policies.

do $$
begin
    if not exists (select from pg_roles where rolname = 'ironcase_app') then
        create role ironcase_app nologin;
    end if;
end
$$;

create table organization (
    organization_id text primary key,
    slug text not null unique,
    name text not null,
    plan text not null,
    status text not null,
    parent_id text references organization (organization_id),
    incident_seq bigint not null default 0,
    created_at bigint not null,
    plan_overrides text not null default '{}',
    parent_access bigint not null default 0
);
create index organization_parent on organization (parent_id);

-- `user` is a reserved word in PostgreSQL: the table is `account` on both.
create table account (
    user_id text primary key,
    email text not null unique,
    name text not null,
    password_hash text not null,
    is_operator boolean not null default false,
    created_at bigint not null
);

create table membership (
    organization_id text not null references organization (organization_id),
    user_id text not null references account (user_id),
    role text not null,
    created_at bigint not null,
    primary key (organization_id, user_id)
);
create index membership_user on membership (user_id, created_at);

create table session (
    session_id text primary key,
    organization_id text not null,
    user_id text not null,
    created_at bigint not null,
    expires_at bigint not null,
    revoked_at bigint,
    revoked_reason text
);
create index session_member on session (organization_id, user_id);

create table refresh_token (
    token_hash text primary key,
    session_id text not null references session (session_id),
    created_at bigint not null,
    expires_at bigint not null,
    used_at bigint
);
create index refresh_token_session on refresh_token (session_id);

create table login_failure (
    email text not null,
    at bigint not null
);
create index login_failure_email on login_failure (email, at);

create table api_key (
    api_key_id text primary key,
    organization_id text not null references organization (organization_id),
    name text not null,
    role text not null,
    key_hash text not null unique,
    key_prefix text not null,
    created_by text not null,
    created_at bigint not null,
    expires_at bigint,
    revoked_at bigint,
    last_used_at bigint,
    tlp_max text,
    rate_per_minute bigint
);
create index api_key_org on api_key (organization_id, created_at);

create table signing_key (
    signing_key_id text primary key,
    algorithm text not null,
    ciphertext bytea not null,
    created_at bigint not null
);

create table incident (
    row_id bigint generated always as identity primary key,
    organization_id text not null references organization (organization_id),
    incident_id text not null,
    number bigint not null,
    title text not null,
    description text not null,
    severity text not null,
    category text not null,
    status text not null,
    resolution text,
    tlp text not null,
    tags text not null,
    assignee_id text,
    reporter_id text not null,
    created_at bigint not null,
    updated_at bigint not null,
    acknowledged_at bigint,
    contained_at bigint,
    resolved_at bigint,
    closed_at bigint,
    deleted_at bigint,
    version bigint not null,
    -- The incident's searchable text (title, description, comments, evidence,
    -- indicators), rebuilt in the transaction that changes any of them.
    search tsvector,
    unique (organization_id, incident_id),
    unique (organization_id, number)
);
create index incident_created on incident (organization_id, created_at, incident_id);
create index incident_updated on incident (organization_id, updated_at, incident_id);
create index incident_status on incident (organization_id, status, created_at, incident_id);
create index incident_severity on incident (organization_id, severity, created_at, incident_id);
create index incident_category on incident (organization_id, category, created_at, incident_id);
create index incident_assignee on incident (organization_id, assignee_id, created_at, incident_id);
create index incident_search on incident using gin (search);

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
    created_at bigint not null,
    primary key (organization_id, comment_id)
);
create index comment_incident on comment (organization_id, incident_id, created_at);

-- Event ids grow in commit order: write transactions take turns across
-- nodes under one advisory lock (see writer.rs), so a reader that has seen id
-- N has seen every committed event below it, on any number of nodes.
create table event (
    event_id bigint generated always as identity primary key,
    organization_id text not null,
    incident_id text,
    type text not null,
    actor_id text,
    data text not null,
    created_at bigint not null
);
create index event_incident on event (organization_id, incident_id, event_id);
create index event_org on event (organization_id, event_id);

create table audit_log (
    organization_id text not null,
    seq bigint not null,
    at bigint not null,
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

create table audit_head (
    organization_id text primary key,
    seq bigint not null,
    hash text not null
);

create table ioc (
    organization_id text not null,
    ioc_id text not null,
    type text not null,
    value text not null,
    tlp text not null,
    tags text not null,
    created_by text,
    created_at bigint not null,
    primary key (organization_id, ioc_id),
    unique (organization_id, type, value)
);

create table ioc_sighting (
    organization_id text not null,
    ioc_id text not null,
    incident_id text not null,
    note text,
    first_seen bigint not null,
    last_seen bigint not null,
    added_by text,
    primary key (organization_id, ioc_id, incident_id)
);
create index ioc_sighting_incident on ioc_sighting (organization_id, incident_id, ioc_id);

create table data_key (
    organization_id text not null,
    data_key_id text not null,
    wrapped bytea not null,
    created_at bigint not null,
    primary key (organization_id, data_key_id)
);

create table evidence (
    organization_id text not null,
    evidence_id text not null,
    incident_id text not null,
    name text not null,
    kind text not null,
    description text,
    size bigint not null,
    sha256 text not null,
    collected_by text,
    collected_at bigint,
    uploaded_by text not null,
    created_at bigint not null,
    data_key_id text not null,
    blob_key text,
    deleted_at bigint,
    deleted_by text,
    delete_reason text,
    primary key (organization_id, evidence_id)
);
create index evidence_incident on evidence (organization_id, incident_id, created_at, evidence_id);

create table custody (
    organization_id text not null,
    evidence_id text not null,
    seq bigint not null,
    action text not null,
    actor_id text,
    actor_kind text not null,
    at bigint not null,
    source_ip text,
    reason text,
    to_party text,
    primary key (organization_id, evidence_id, seq)
);

create table usage_counter (
    organization_id text not null,
    quota text not null,
    period text not null,
    used bigint not null,
    primary key (organization_id, quota, period)
);

create table stream_ticket (
    ticket_hash text primary key,
    organization_id text not null,
    session_id text,
    api_key_id text,
    expires_at bigint not null
);
create index stream_ticket_expiry on stream_ticket (expires_at);

-- The second wall. Every transaction of the application says whose data it
-- touches: `app.tenant_id` is an organisation id, or `*` for the few
-- platform operations (sign-in by e-mail, a session or key looked up by its
-- secret, operator actions). Unset, a query sees nothing and writes nothing.
do $$
declare
    t text;
begin
    foreach t in array array['organization', 'membership', 'session', 'api_key', 'incident', 'incident_tag', 'comment', 'event',
                              'audit_log', 'audit_head', 'ioc', 'ioc_sighting', 'data_key', 'evidence', 'custody',
                              'usage_counter', 'stream_ticket']
    loop
        execute format('alter table %I enable row level security', t);
        execute format(
            'create policy tenant on %I using (organization_id = current_setting(''app.tenant_id'', true) '
            'or current_setting(''app.tenant_id'', true) = ''*'') '
            'with check (organization_id = current_setting(''app.tenant_id'', true) '
            'or current_setting(''app.tenant_id'', true) = ''*'')', t);
    end loop;
end
$$;

grant select, insert, update, delete on all tables in schema public to ironcase_app;
grant usage, select on all sequences in schema public to ironcase_app;
