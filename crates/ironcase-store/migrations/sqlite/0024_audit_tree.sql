-- Each audit chain (an organisation's, and the platform's) is also the
-- leaves of an RFC 6962 Merkle tree. `audit_tree` keeps the tree's stored
-- hashes (the numbering of Go's sumdb/tlog: about two per entry), so that a
-- root, an inclusion proof or a consistency proof reads O(log n) rows.
-- `audit_checkpoint` keeps each signed checkpoint (a C2SP signed note over
-- origin, size and root): the tree is built up to the latest one.
-- The audit log is queried by source address and request id too.
create index audit_log_source_ip on audit_log (organization_id, source_ip, seq);
create index audit_log_request on audit_log (organization_id, request_id, seq);

create table audit_tree (
    organization_id text not null,
    idx integer not null,
    hash text not null, -- hex
    primary key (organization_id, idx)
);

create table audit_checkpoint (
    organization_id text not null,
    size integer not null,
    root text not null, -- hex
    note text not null,
    key_id text not null,
    at integer not null,
    primary key (organization_id, size)
);
