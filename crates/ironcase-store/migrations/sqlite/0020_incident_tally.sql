-- Incrementally maintained aggregates of the organisation's live incidents,
-- kept by triggers in the transaction of every write to `incident` (create,
-- edit, status change, delete, import), so a dashboard or a summary reads a
-- few hundred rows instead of grouping every incident. Category and TLP are
-- kept as dimensions so what a credential may see (`Sight`) still applies.

-- How many live incidents have each (status, severity, category, TLP).
create table incident_tally (
    organization_id text not null,
    status text not null,
    severity text not null,
    category text not null,
    tlp text not null,
    n integer not null,
    primary key (organization_id, status, severity, category, tlp)
) without rowid;

-- Live incidents opened, and closed, on each UTC day (days since 1970).
create table incident_day (
    organization_id text not null,
    day integer not null,
    category text not null,
    tlp text not null,
    opened integer not null,
    closed integer not null,
    primary key (organization_id, day, category, tlp)
) without rowid;

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
    ) group by organization_id, day, category, tlp;

create trigger incident_tally_insert after insert on incident when new.deleted_at is null
begin
    insert into incident_tally (organization_id, status, severity, category, tlp, n)
        values (new.organization_id, new.status, new.severity, new.category, new.tlp, 1)
        on conflict do update set n = n + 1;
    insert into incident_day (organization_id, day, category, tlp, opened, closed)
        values (new.organization_id, new.created_at / 86400000, new.category, new.tlp, 1, 0)
        on conflict do update set opened = opened + 1;
    insert into incident_day (organization_id, day, category, tlp, opened, closed)
        select new.organization_id, new.closed_at / 86400000, new.category, new.tlp, 0, 1 where new.closed_at is not null
        on conflict do update set closed = closed + 1;
end;

-- Only a change to a counted column moves a count: an edit of the title or a
-- new assignee costs nothing here.
create trigger incident_tally_update after update on incident
when old.status is not new.status or old.severity is not new.severity or old.category is not new.category
    or old.tlp is not new.tlp or old.deleted_at is not new.deleted_at or old.closed_at is not new.closed_at
    or old.created_at is not new.created_at
begin
    update incident_tally set n = n - 1
        where old.deleted_at is null and organization_id = old.organization_id and status = old.status
          and severity = old.severity and category = old.category and tlp = old.tlp;
    update incident_day set opened = opened - 1
        where old.deleted_at is null and organization_id = old.organization_id and day = old.created_at / 86400000
          and category = old.category and tlp = old.tlp;
    update incident_day set closed = closed - 1
        where old.deleted_at is null and old.closed_at is not null and organization_id = old.organization_id
          and day = old.closed_at / 86400000 and category = old.category and tlp = old.tlp;
    insert into incident_tally (organization_id, status, severity, category, tlp, n)
        select new.organization_id, new.status, new.severity, new.category, new.tlp, 1 where new.deleted_at is null
        on conflict do update set n = n + 1;
    insert into incident_day (organization_id, day, category, tlp, opened, closed)
        select new.organization_id, new.created_at / 86400000, new.category, new.tlp, 1, 0 where new.deleted_at is null
        on conflict do update set opened = opened + 1;
    insert into incident_day (organization_id, day, category, tlp, opened, closed)
        select new.organization_id, new.closed_at / 86400000, new.category, new.tlp, 0, 1
        where new.deleted_at is null and new.closed_at is not null
        on conflict do update set closed = closed + 1;
end;

create trigger incident_tally_delete after delete on incident when old.deleted_at is null
begin
    update incident_tally set n = n - 1
        where organization_id = old.organization_id and status = old.status
          and severity = old.severity and category = old.category and tlp = old.tlp;
    update incident_day set opened = opened - 1
        where organization_id = old.organization_id and day = old.created_at / 86400000
          and category = old.category and tlp = old.tlp;
    update incident_day set closed = closed - 1
        where old.closed_at is not null and organization_id = old.organization_id
          and day = old.closed_at / 86400000 and category = old.category and tlp = old.tlp;
end;
