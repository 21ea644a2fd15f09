-- Search, second form: one full-text document per incident (its title,
-- description, comments, evidence names and indicator values together), so
-- that "every word somewhere in the incident" is a plain FTS5 AND, ranking is
-- per incident, and facets join each hit to its incident by integer key.
--
-- The incident table gets a stable integer key for that join: an implicit
-- rowid may change on VACUUM, an INTEGER PRIMARY KEY never does.

create table incident_v2 (
    row_id integer primary key,
    organization_id text not null references organization (organization_id),
    incident_id text not null,
    number integer not null,
    title text not null,
    description text not null,
    severity text not null,
    category text not null,
    status text not null,
    resolution text,
    tlp text not null,
    tags text not null,
    assignee_id text,
    reporter_id text not null,
    created_at integer not null,
    updated_at integer not null,
    acknowledged_at integer,
    contained_at integer,
    resolved_at integer,
    closed_at integer,
    deleted_at integer,
    version integer not null,
    unique (organization_id, incident_id),
    unique (organization_id, number)
);
insert into incident_v2 (organization_id, incident_id, number, title, description, severity, category, status, resolution, tlp, tags,
                         assignee_id, reporter_id, created_at, updated_at, acknowledged_at, contained_at, resolved_at, closed_at,
                         deleted_at, version)
    select organization_id, incident_id, number, title, description, severity, category, status, resolution, tlp, tags,
           assignee_id, reporter_id, created_at, updated_at, acknowledged_at, contained_at, resolved_at, closed_at, deleted_at, version
    from incident order by organization_id, number;
drop table incident;
alter table incident_v2 rename to incident;
create index incident_created on incident (organization_id, created_at, incident_id);
create index incident_updated on incident (organization_id, updated_at, incident_id);
create index incident_status on incident (organization_id, status, created_at, incident_id);
create index incident_severity on incident (organization_id, severity, created_at, incident_id);
create index incident_category on incident (organization_id, category, created_at, incident_id);
create index incident_assignee on incident (organization_id, assignee_id, created_at, incident_id);

-- The parts of an incident's text are read from where they live (incident,
-- comment, evidence, ioc), so the copy that search_source kept goes, with
-- its per-part index.
drop trigger search_source_ai;
drop trigger search_source_ad;
drop trigger search_source_au;
drop table search_doc;
drop table search_source;
create index comment_incident on comment (organization_id, incident_id, created_at);

-- Contentless (the text is in its own tables), with deletes: rowid = incident.row_id.
create virtual table search_fts using fts5(
    body,
    content = '',
    contentless_delete = 1,
    tokenize = 'unicode61 remove_diacritics 2'
);
-- How many incidents each word occurs in: picks the telling words of an
-- incident for "similar incidents".
create virtual table search_vocab using fts5vocab(search_fts, 'row');

insert into search_fts (rowid, body)
    select i.row_id,
           i.title || char(10) || i.description
           || coalesce(char(10) || (select group_concat(body, char(10)) from (select c.body from comment c
                  where c.organization_id = i.organization_id and c.incident_id = i.incident_id order by c.created_at, c.comment_id)), '')
           || coalesce(char(10) || (select group_concat(t, char(10)) from (select e.name || coalesce(' ' || e.description, '') as t from evidence e
                  where e.organization_id = i.organization_id and e.incident_id = i.incident_id and e.deleted_at is null
                  order by e.created_at, e.evidence_id)), '')
           || coalesce(char(10) || (select group_concat(value, char(10)) from (select x.value from ioc_sighting g
                  join ioc x on x.organization_id = g.organization_id and x.ioc_id = g.ioc_id
                  where g.organization_id = i.organization_id and g.incident_id = i.incident_id order by g.first_seen, x.ioc_id)), '')
    from incident i
    where i.deleted_at is null;

-- A link table read only by its primary key: one B-tree instead of two.
create table incident_tag_v2 (
    organization_id text not null,
    tag text not null,
    incident_id text not null,
    primary key (organization_id, tag, incident_id)
) without rowid;
insert into incident_tag_v2 select organization_id, tag, incident_id from incident_tag;
drop table incident_tag;
alter table incident_tag_v2 rename to incident_tag;
