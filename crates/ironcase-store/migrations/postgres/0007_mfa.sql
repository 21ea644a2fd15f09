-- A second factor per account: TOTP (RFC 6238). The secret is sealed under
-- the master key (AES-256-GCM, associated data bound to the account);
-- `confirmed_at` stays null until a first code proves the authenticator
-- holds it. `last_step` is the newest 30-second step accepted: no code is
-- accepted twice.
create table mfa_totp (
    user_id text primary key references account (user_id),
    sealed_secret bytea not null,
    created_at bigint not null,
    confirmed_at bigint,
    last_step bigint not null default 0
);
-- Backup codes: only their SHA-256; each works once.
create table mfa_backup_code (
    user_id text not null references account (user_id),
    code_hash text not null,
    created_at bigint not null,
    used_at bigint,
    primary key (user_id, code_hash)
);
-- A login that passed its password and waits for its second factor: only
-- the SHA-256 of the challenge is kept; single-use, short-lived, few tries.
create table mfa_challenge (
    challenge_hash text primary key,
    user_id text not null references account (user_id),
    organization_id text not null references organization (organization_id),
    source text not null,
    created_at bigint not null,
    expires_at bigint not null,
    tries bigint not null default 0
);
create index mfa_challenge_expiry on mfa_challenge (expires_at);
-- An organisation may require every member to have a second factor.
alter table organization add column mfa_required boolean not null default false;
alter table mfa_challenge enable row level security;
create policy tenant on mfa_challenge
    using (organization_id = current_setting('app.tenant_id', true) or current_setting('app.tenant_id', true) = '*')
    with check (organization_id = current_setting('app.tenant_id', true) or current_setting('app.tenant_id', true) = '*');
grant select, insert, update, delete on mfa_totp, mfa_backup_code, mfa_challenge to ironcase_app;
