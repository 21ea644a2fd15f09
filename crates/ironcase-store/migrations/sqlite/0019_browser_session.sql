-- The console's cookie names a session by the SHA-256 of its secret.
alter table session add column browser_hash text;
create unique index session_browser on session (browser_hash) where browser_hash is not null;
