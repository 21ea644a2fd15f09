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
