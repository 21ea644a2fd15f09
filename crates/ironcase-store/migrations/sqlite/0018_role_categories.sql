-- A custom role may limit the categories of incidents its holders see
-- (space-separated; null: every category).
alter table custom_role add column categories text;
