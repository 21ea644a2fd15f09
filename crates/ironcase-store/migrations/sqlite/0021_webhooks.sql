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
    enabled integer not null,
    sealed_secret blob not null,
    sealed_previous blob,
    previous_until integer,
    event_cursor integer not null,
    failing_since integer,
    disabled_reason text,
    created_at integer not null,
    updated_at integer not null,
    primary key (organization_id, webhook_id)
);
create index webhook_enabled on webhook (enabled, organization_id);

create table webhook_message (
    organization_id text not null,
    message_id text not null,
    webhook_id text not null,
    event_id integer, -- null for a test message
    type text not null,
    payload text not null,
    status text not null, -- pending, delivered, failed
    attempts integer not null,
    next_at integer not null,
    lease_until integer,
    created_at integer not null,
    finished_at integer,
    primary key (organization_id, message_id)
);
-- The due messages, oldest first per endpoint; and each endpoint's by status.
create index webhook_message_due on webhook_message (status, next_at) where status = 'pending';
create index webhook_message_of on webhook_message (organization_id, webhook_id, status, created_at, message_id);

create table webhook_attempt (
    organization_id text not null,
    attempt_id integer not null,
    webhook_id text not null,
    message_id text not null,
    at integer not null,
    status_code integer, -- null: no answer (refused, timed out)
    latency_ms integer not null,
    success integer not null,
    error text,
    response text not null, -- the first 1 KB of the answer
    primary key (organization_id, attempt_id)
);
create index webhook_attempt_of on webhook_attempt (organization_id, webhook_id, attempt_id);
