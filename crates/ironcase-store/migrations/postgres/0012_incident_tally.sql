-- Incrementally maintained aggregates of the organisation's live incidents,
-- kept by a trigger in the transaction of every write to `incident`, so a
-- dashboard or a summary reads a few hundred rows instead of grouping every
-- incident. Category and TLP are dimensions so `Sight` still applies. The
-- per-organisation incident number already serialises an organisation's
-- creations, so the upserts add no new contention.

create table incident_tally (
    organization_id text not null,
    status text not null,
    severity text not null,
    category text not null,
    tlp text not null,
    n bigint not null,
    primary key (organization_id, status, severity, category, tlp)
);

create table incident_day (
    organization_id text not null,
    day bigint not null,
    category text not null,
    tlp text not null,
    opened bigint not null,
    closed bigint not null,
    primary key (organization_id, day, category, tlp)
);

insert into incident_tally (organization_id, status, severity, category, tlp, n)
    select organization_id, status, severity, category, tlp, count(*) from incident
    where deleted_at is null group by organization_id, status, severity, category, tlp;

insert into incident_day (organization_id, day, category, tlp, opened, closed)
    select organization_id, day, category, tlp, sum(opened), sum(closed) from (
        select organization_id, created_at / 86400000 as day, category, tlp, 1 as opened, 0 as closed
            from incident where deleted_at is null
        union all
        select organization_id, closed_at / 86400000, category, tlp, 0, 1
            from incident where deleted_at is null and closed_at is not null
    ) d group by organization_id, day, category, tlp;

create function incident_tally_count(r incident, sign bigint) returns void language plpgsql as $$
begin
    if r.deleted_at is not null then
        return;
    end if;
    insert into incident_tally (organization_id, status, severity, category, tlp, n)
        values (r.organization_id, r.status, r.severity, r.category, r.tlp, sign)
        on conflict (organization_id, status, severity, category, tlp) do update set n = incident_tally.n + sign;
    insert into incident_day (organization_id, day, category, tlp, opened, closed)
        values (r.organization_id, r.created_at / 86400000, r.category, r.tlp, sign, 0)
        on conflict (organization_id, day, category, tlp) do update set opened = incident_day.opened + sign;
    if r.closed_at is not null then
        insert into incident_day (organization_id, day, category, tlp, opened, closed)
            values (r.organization_id, r.closed_at / 86400000, r.category, r.tlp, 0, sign)
            on conflict (organization_id, day, category, tlp) do update set closed = incident_day.closed + sign;
    end if;
end
$$;

create function incident_tally() returns trigger language plpgsql as $$
begin
    if tg_op in ('UPDATE', 'DELETE') then
        perform incident_tally_count(old, -1);
    end if;
    if tg_op in ('INSERT', 'UPDATE') then
        perform incident_tally_count(new, 1);
    end if;
    return null;
end
$$;

create trigger incident_tally_insert after insert or delete on incident
    for each row execute function incident_tally();
-- Only a change to a counted column moves a count.
create trigger incident_tally_update after update on incident for each row
    when (old.status is distinct from new.status or old.severity is distinct from new.severity
          or old.category is distinct from new.category or old.tlp is distinct from new.tlp
          or old.deleted_at is distinct from new.deleted_at or old.closed_at is distinct from new.closed_at
          or old.created_at is distinct from new.created_at)
    execute function incident_tally();

alter table incident_tally enable row level security;
create policy tenant on incident_tally
    using (organization_id = current_setting('app.tenant_id', true) or current_setting('app.tenant_id', true) = '*')
    with check (organization_id = current_setting('app.tenant_id', true) or current_setting('app.tenant_id', true) = '*');
alter table incident_day enable row level security;
create policy tenant on incident_day
    using (organization_id = current_setting('app.tenant_id', true) or current_setting('app.tenant_id', true) = '*')
    with check (organization_id = current_setting('app.tenant_id', true) or current_setting('app.tenant_id', true) = '*');
grant select, insert, update, delete on incident_tally, incident_day to ironcase_app;
