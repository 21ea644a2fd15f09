-- Erasure by crypto-shredding (see the SQLite migration 0026 for the why).
alter table audit_log add column v bigint not null default 1;
alter table audit_log add column personal text;
alter table audit_log add column ip_tag text;
create index audit_log_ip_tag on audit_log (organization_id, ip_tag, seq) where ip_tag is not null;
-- Only entries written before sealing have their address in the clear.
drop index audit_log_source_ip;
create index audit_log_source_ip on audit_log (organization_id, source_ip, seq) where source_ip is not null;

create table subject_key (
    organization_id text not null,
    subject text not null,
    sealed text not null,
    created_at bigint not null,
    primary key (organization_id, subject)
);

create table erased_subject (
    organization_id text not null,
    user_id text not null,
    request_id text not null,
    at bigint not null,
    primary key (organization_id, user_id)
);

do $$
declare
    t text;
begin
    foreach t in array array['subject_key', 'erased_subject']
    loop
        execute format('alter table %I enable row level security', t);
        execute format(
            'create policy tenant on %I using (organization_id = current_setting(''app.tenant_id'', true) '
            'or current_setting(''app.tenant_id'', true) = ''*'') '
            'with check (organization_id = current_setting(''app.tenant_id'', true) '
            'or current_setting(''app.tenant_id'', true) = ''*'')', t);
        execute format('grant select, insert, update, delete on %I to ironcase_app', t);
    end loop;
end $$;
