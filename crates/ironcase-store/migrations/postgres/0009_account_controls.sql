-- An organisation's session timeouts (null: the server's), and the address
-- ranges its members and keys may call from (space-separated; empty:
-- anywhere). A key may be held to ranges of its own. A session remembers when
-- it last proved who holds it (login, MFA, SSO, re-authentication): sensitive
-- actions need that to be recent.
alter table organization add column session_idle_secs bigint;
alter table organization add column session_max_secs bigint;
alter table organization add column ip_allowlist text not null default '';
alter table api_key add column allowed_cidrs text not null default '';
alter table session add column authenticated_at bigint not null default 0;
update session set authenticated_at = created_at;
-- Password resets: only the SHA-256 of the link's token; single-use,
-- short-lived. Accounts are no tenant's: the platform's table.
create table password_reset (
    token_hash text primary key,
    user_id text not null references account (user_id),
    created_at bigint not null,
    expires_at bigint not null,
    used_at bigint
);
create index password_reset_of_account on password_reset (user_id, created_at);
grant select, insert, update, delete on password_reset to ironcase_app;
-- An organisation's own roles: a built-in base, permissions added and taken
-- away, and conditions. Members, invitations and API keys may hold one (the
-- built-in role stays as its base: the rank).
create table custom_role (
    role_id text primary key,
    organization_id text not null references organization (organization_id),
    name text not null,
    base text not null,
    grants text not null default '',
    revokes text not null default '',
    own_or_assigned boolean not null default false,
    tlp_max text,
    created_at bigint not null,
    updated_at bigint not null,
    unique (organization_id, name)
);
alter table membership add column custom_role_id text references custom_role (role_id);
alter table invitation add column custom_role_id text references custom_role (role_id);
alter table api_key add column custom_role_id text references custom_role (role_id);
alter table custom_role enable row level security;
create policy tenant on custom_role
    using (organization_id = current_setting('app.tenant_id', true) or current_setting('app.tenant_id', true) = '*')
    with check (organization_id = current_setting('app.tenant_id', true) or current_setting('app.tenant_id', true) = '*');
grant select, insert, update, delete on custom_role to ironcase_app;
-- Single sign-on per organisation (OpenID Connect). The client secret is
-- sealed under the master key; lists are space-separated, the role mapping
-- JSON ({group: role}).
create table sso_config (
    organization_id text primary key references organization (organization_id),
    issuer text not null,
    client_id text not null,
    sealed_secret bytea not null,
    scopes text not null default '',
    allowed_domains text not null default '',
    group_claim text not null default 'groups',
    role_mapping text not null default '{}',
    default_role text,
    jit boolean not null default false,
    sso_required boolean not null default false,
    updated_at bigint not null
);
-- Logins on their way through a provider: the SHA-256 of their state, the
-- nonce and PKCE verifier the callback needs, the hash of the cookie that
-- binds the login to the browser that began it. Single-use, 10 minutes.
create table sso_login (
    state_hash text primary key,
    organization_id text not null references organization (organization_id),
    nonce text not null,
    pkce_verifier text not null,
    binding_hash text not null,
    mode text not null,
    created_at bigint not null,
    expires_at bigint not null
);
-- Accounts as a provider knows them (issuer, subject).
create table sso_identity (
    issuer text not null,
    subject text not null,
    user_id text not null references account (user_id),
    created_at bigint not null,
    primary key (issuer, subject)
);
-- One-time codes a finished login hands to an API client (60 seconds).
create table sso_code (
    code_hash text primary key,
    organization_id text not null references organization (organization_id),
    user_id text not null references account (user_id),
    expires_at bigint not null
);
alter table sso_config enable row level security;
create policy tenant on sso_config
    using (organization_id = current_setting('app.tenant_id', true) or current_setting('app.tenant_id', true) = '*')
    with check (organization_id = current_setting('app.tenant_id', true) or current_setting('app.tenant_id', true) = '*');
alter table sso_login enable row level security;
create policy tenant on sso_login
    using (organization_id = current_setting('app.tenant_id', true) or current_setting('app.tenant_id', true) = '*')
    with check (organization_id = current_setting('app.tenant_id', true) or current_setting('app.tenant_id', true) = '*');
alter table sso_code enable row level security;
create policy tenant on sso_code
    using (organization_id = current_setting('app.tenant_id', true) or current_setting('app.tenant_id', true) = '*')
    with check (organization_id = current_setting('app.tenant_id', true) or current_setting('app.tenant_id', true) = '*');
grant select, insert, update, delete on sso_config, sso_login, sso_identity, sso_code to ironcase_app;
-- HTTP message signatures (RFC 9421): an API key's Ed25519 public key (raw,
-- base64), and the signatures already accepted (their SHA-256), each once.
alter table api_key add column public_key text;
create table request_signature (
    signature_hash text primary key,
    expires_at bigint not null
);
grant select, insert, update, delete on request_signature to ironcase_app;
