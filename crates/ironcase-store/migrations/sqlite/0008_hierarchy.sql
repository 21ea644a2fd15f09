-- Organisation hierarchy: a child may let its parent read (never write) its
-- incidents, evidence metadata and audit log.
alter table organization add column parent_access integer not null default 0;
create index organization_parent on organization (parent_id);
