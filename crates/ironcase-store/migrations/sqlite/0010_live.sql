-- Live updates read an organisation's events after a cursor.
create index event_org on event (organization_id, event_id);

-- Single-use tickets that let a browser open the WebSocket stream (it cannot
-- send an Authorization header there). Only the SHA-256 of a ticket is kept;
-- it names the credential it was issued to, which is checked again on use.
create table stream_ticket (
    ticket_hash text primary key,
    organization_id text not null,
    session_id text,
    api_key_id text,
    expires_at integer not null
);
create index stream_ticket_expiry on stream_ticket (expires_at);
