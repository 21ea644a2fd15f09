-- An invitation to join an organisation: nobody becomes a member without
-- accepting (an existing account proves itself with its password). Only the
-- SHA-256 of the link's token is kept.
create table invitation (
    organization_id text not null references organization (organization_id),
    invitation_id text not null,
    email text not null,
    role text not null,
    token_hash text not null unique,
    invited_by text not null,
    created_at bigint not null,
    expires_at bigint not null,
    accepted_at bigint,
    revoked_at bigint,
    primary key (organization_id, invitation_id)
);
create index invitation_pending on invitation (organization_id, created_at, invitation_id);
alter table invitation enable row level security;
create policy tenant on invitation
    using (organization_id = current_setting('app.tenant_id', true) or current_setting('app.tenant_id', true) = '*')
    with check (organization_id = current_setting('app.tenant_id', true) or current_setting('app.tenant_id', true) = '*');
grant select, insert, update, delete on invitation to ironcase_app;
