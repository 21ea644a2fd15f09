-- Webhook endpoints and their outbox. Messages are made from the event log
-- by cursor (each endpoint remembers the last event it looked at), so an
-- event committed is enqueued once for every endpoint subscribed to it,
-- whichever node does it; a message keeps its id across retries. Secrets
-- are sealed under the master key; the previous one is kept for a day after
-- a rotation, so receivers can move over.
create table webhook (
    organization_id text not null references organization (organization_id),
    webhook_id text not null,
    url text not null,
    description text not null,
    event_types text not null, -- space-separated; "*" for every type
    enabled bigint not null,
    sealed_secret bytea not null,
    sealed_previous bytea,
    previous_until bigint,
    event_cursor bigint not null,
    failing_since bigint,
    disabled_reason text,
    created_at bigint not null,
    updated_at bigint not null,
    primary key (organization_id, webhook_id)
);
create index webhook_enabled on webhook (enabled, organization_id);

create table webhook_message (
    organization_id text not null,
    message_id text not null,
    webhook_id text not null,
    event_id bigint, -- null for a test message
    type text not null,
    payload text not null,
    status text not null, -- pending, delivered, failed
    attempts bigint not null,
    next_at bigint not null,
    lease_until bigint,
    created_at bigint not null,
    finished_at bigint,
    primary key (organization_id, message_id)
);
-- The due messages, oldest first per endpoint; and each endpoint's by status.
create index webhook_message_due on webhook_message (status, next_at) where status = 'pending';
create index webhook_message_of on webhook_message (organization_id, webhook_id, status, created_at, message_id);

create table webhook_attempt (
    organization_id text not null,
    attempt_id bigint not null,
    webhook_id text not null,
    message_id text not null,
    at bigint not null,
    status_code bigint, -- null: no answer (refused, timed out)
    latency_ms bigint not null,
    success bigint not null,
    error text,
    response text not null, -- the first 1 KB of the answer
    primary key (organization_id, attempt_id)
);
create index webhook_attempt_of on webhook_attempt (organization_id, webhook_id, attempt_id);
do $$
declare
    t text;
begin
    foreach t in array array['webhook', 'webhook_message', 'webhook_attempt']
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
grant select, insert, update, delete on webhook, webhook_message, webhook_attempt to ironcase_app;
