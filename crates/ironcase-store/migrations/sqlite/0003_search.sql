-- Full-text search over what responders write and find: incident titles and
-- descriptions, comments, indicator values. `search_source` holds the text
-- (one row per document, written in the same transaction as the row it
-- mirrors); `search_doc` is its FTS5 index, kept in step by triggers.

create table search_source (
    doc_id integer primary key,
    organization_id text not null,
    incident_id text not null,
    kind text not null, -- incident | comment | ioc
    ref_id text not null,
    body text not null,
    unique (organization_id, kind, ref_id, incident_id)
);
create index search_source_incident on search_source (organization_id, incident_id);

create virtual table search_doc using fts5(
    body,
    content = 'search_source',
    content_rowid = 'doc_id',
    tokenize = 'unicode61 remove_diacritics 2'
);

create trigger search_source_ai after insert on search_source begin
    insert into search_doc (rowid, body) values (new.doc_id, new.body);
end;
create trigger search_source_ad after delete on search_source begin
    insert into search_doc (search_doc, rowid, body) values ('delete', old.doc_id, old.body);
end;
create trigger search_source_au after update on search_source begin
    insert into search_doc (search_doc, rowid, body) values ('delete', old.doc_id, old.body);
    insert into search_doc (rowid, body) values (new.doc_id, new.body);
end;

-- What existed before search did.
insert into search_source (organization_id, incident_id, kind, ref_id, body)
    select organization_id, incident_id, 'incident', incident_id, title || char(10) || description
    from incident where deleted_at is null;
insert into search_source (organization_id, incident_id, kind, ref_id, body)
    select c.organization_id, c.incident_id, 'comment', c.comment_id, c.body
    from comment c join incident i on i.organization_id = c.organization_id and i.incident_id = c.incident_id
    where i.deleted_at is null;
insert into search_source (organization_id, incident_id, kind, ref_id, body)
    select s.organization_id, s.incident_id, 'ioc', s.ioc_id, x.value
    from ioc_sighting s join ioc x on x.organization_id = s.organization_id and x.ioc_id = s.ioc_id;
