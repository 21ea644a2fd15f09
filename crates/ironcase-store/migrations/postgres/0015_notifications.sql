-- Notification channels and analyzers are endpoints of the webhook outbox:
-- the same cursor, leases, retries and attempt log. `kind` says what an
-- endpoint is (webhook; the channels email, slack, teams, generic; analyzer),
-- `config` its settings as JSON (rules, templates, recipients, TLP ceiling,
-- indicator types). A channel whose address is itself a secret (a Slack or
-- Teams incoming webhook) keeps it sealed in `sealed_url`; `url` then holds
-- only its scheme and host.
alter table webhook add column kind text not null default 'webhook';
alter table webhook add column config text not null default '{}';
alter table webhook add column sealed_url bytea;

-- What each member wants by e-mail from the organisation's e-mail channels;
-- no row: everything the channels send to members.
create table notification_pref (
    organization_id text not null references organization (organization_id),
    account_id text not null,
    email bigint not null,
    event_types text not null,
    only_assigned bigint not null,
    updated_at bigint not null,
    primary key (organization_id, account_id)
);
alter table notification_pref enable row level security;
create policy tenant on notification_pref
    using (organization_id = current_setting('app.tenant_id', true) or current_setting('app.tenant_id', true) = '*')
    with check (organization_id = current_setting('app.tenant_id', true) or current_setting('app.tenant_id', true) = '*');
grant select, insert, update, delete on notification_pref to ironcase_app;

-- The latest report of each analyzer on each indicator.
create table ioc_report (
    organization_id text not null references organization (organization_id),
    ioc_id text not null,
    analyzer_id text not null,
    analyzer_name text not null, -- kept when the analyzer is deleted
    verdict text not null,
    summary text not null,
    link text,
    raw text not null,
    at bigint not null,
    primary key (organization_id, ioc_id, analyzer_id)
);
alter table ioc_report enable row level security;
create policy tenant on ioc_report
    using (organization_id = current_setting('app.tenant_id', true) or current_setting('app.tenant_id', true) = '*')
    with check (organization_id = current_setting('app.tenant_id', true) or current_setting('app.tenant_id', true) = '*');
grant select, insert, update, delete on ioc_report to ironcase_app;
