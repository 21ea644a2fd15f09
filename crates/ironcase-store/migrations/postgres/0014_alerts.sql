-- Alerts from detection tools, before triage. One per (source, source_ref):
-- the same alert sent again finds the first. Alerts with the same dedup key
-- within a window group under the first open one (its count and last_seen
-- rise). Observables are kept as sent, normalised, as JSON
-- ([{"type", "value"}]); the raw payload as text, bounded.
create table alert (
    organization_id text not null references organization (organization_id),
    alert_id text not null,
    source text not null,
    source_ref text not null,
    type text not null,
    title text not null,
    description text not null,
    severity text not null,
    tlp text not null,
    observables text not null,
    occurred_at bigint not null,
    raw text,
    dedup_key text,
    status text not null,
    count bigint not null,
    first_seen bigint not null,
    last_seen bigint not null,
    incident_id text,
    dismiss_reason text,
    snoozed_until bigint,
    created_at bigint not null,
    updated_at bigint not null,
    primary key (organization_id, alert_id),
    unique (organization_id, source, source_ref)
);
create index alert_created on alert (organization_id, created_at, alert_id);
create index alert_status on alert (organization_id, status, created_at, alert_id);
create index alert_dedup on alert (organization_id, dedup_key, last_seen) where dedup_key is not null;
alter table alert enable row level security;
create policy tenant on alert
    using (organization_id = current_setting('app.tenant_id', true) or current_setting('app.tenant_id', true) = '*')
    with check (organization_id = current_setting('app.tenant_id', true) or current_setting('app.tenant_id', true) = '*');
grant select, insert, update, delete on alert to ironcase_app;
