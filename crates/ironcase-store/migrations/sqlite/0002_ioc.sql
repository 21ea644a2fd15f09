-- Indicators of compromise: one row per (organisation, type, normal form), and
-- one sighting per incident that saw it. Values are stored normalised (see
-- ironcase-domain/src/ioc.rs), so any written form of an indicator finds it.

create table ioc (
    organization_id text not null,
    ioc_id text not null,
    type text not null,
    value text not null,
    tlp text not null,
    tags text not null, -- JSON array
    created_by text,
    created_at integer not null,
    primary key (organization_id, ioc_id),
    unique (organization_id, type, value)
);

create table ioc_sighting (
    organization_id text not null,
    ioc_id text not null,
    incident_id text not null,
    note text,
    first_seen integer not null,
    last_seen integer not null,
    added_by text,
    primary key (organization_id, ioc_id, incident_id)
);
create index ioc_sighting_incident on ioc_sighting (organization_id, incident_id, ioc_id);
