-- Erasure by crypto-shredding. An audit entry of version 2 keeps its
-- personal data (source address, user agent, e-mail addresses) outside the
-- bytes the chain hashes: in `personal`, one part per data subject, each a
-- salted commitment (hashed) and the data sealed under that subject's key
-- (not hashed). `ip_tag` is a keyed hash of the source address, to filter
-- by. Erasure deletes the subject's key: the data can no longer be read,
-- and every chain, tree and checkpoint still verifies.
alter table audit_log add column v integer not null default 1;
alter table audit_log add column personal text;
alter table audit_log add column ip_tag text;
create index audit_log_ip_tag on audit_log (organization_id, ip_tag, seq) where ip_tag is not null;
-- Only entries written before sealing have their address in the clear.
drop index audit_log_source_ip;
create index audit_log_source_ip on audit_log (organization_id, source_ip, seq) where source_ip is not null;

-- Each data subject's key, sealed under the master key.
create table subject_key (
    organization_id text not null,
    subject text not null,
    sealed text not null,
    created_at integer not null,
    primary key (organization_id, subject)
);

-- The accounts an organisation erased: their comments stay (the
-- organisation's record), shown with the author erased.
create table erased_subject (
    organization_id text not null,
    user_id text not null,
    request_id text not null,
    at integer not null,
    primary key (organization_id, user_id)
);

-- The tree's stored hashes in one B-tree (without a row id): each entry adds
-- about two of them, and the table and its primary key index were two.
create table audit_tree_packed (
    organization_id text not null,
    idx integer not null,
    hash text not null, -- hex
    primary key (organization_id, idx)
) without rowid;
insert into audit_tree_packed (organization_id, idx, hash) select organization_id, idx, hash from audit_tree;
drop table audit_tree;
alter table audit_tree_packed rename to audit_tree;
