-- Plans and quotas: an organisation's overrides of its plan's defaults
-- (JSON, see ironcase-domain/src/plan.rs), and counters for periodic quotas
-- (incidents per month), charged in the transaction of the create they guard.
alter table organization add column plan_overrides text not null default '{}';

create table usage_counter (
    organization_id text not null,
    quota text not null,
    period text not null, -- e.g. 2026-11
    used integer not null,
    primary key (organization_id, quota, period)
) without rowid;
