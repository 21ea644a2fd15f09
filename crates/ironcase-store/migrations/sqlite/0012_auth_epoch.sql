-- Counts changes to what a session may do (a session revoked, a role changed,
-- a member removed, an organisation's status set), in the transaction of the
-- change. Nodes that keep looked-up sessions in memory read it once a second
-- and forget them all when it moves: the backstop for a change whose Redis
-- notice did not get through (see ironcase-app/src/sessions.rs).
create table auth_epoch (
    id integer primary key check (id = 1),
    epoch integer not null
);
insert into auth_epoch (id, epoch) values (1, 0);
