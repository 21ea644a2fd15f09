-- What a member sees of their sessions: where each began, how it proved
-- itself, when it was last used (a refresh). A session also ends when it has
-- been idle too long or lived too long (ASVS 4.0.3 V3.3.2).
alter table session add column last_seen_at integer not null default 0;
alter table session add column source_ip text;
alter table session add column user_agent text;
alter table session add column method text not null default 'password';
create index session_of_member on session (organization_id, user_id, created_at, session_id);
