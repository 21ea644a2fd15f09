-- A custom role may limit the categories of incidents its holders see
-- (space-separated; null: every category).
alter table custom_role add column categories text;

-- The roles that may still sign in with a password while the organisation
-- requires single sign-on (break-glass; space-separated, may be empty).
alter table sso_config add column password_roles text not null default 'owner';
