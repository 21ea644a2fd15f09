-- Failed logins are counted per account and source (an address, or a device
-- that logged in before), so that nobody can lock an account for everyone.
alter table login_failure add column source text not null default '';
create index login_failure_source on login_failure (email, source, at);
