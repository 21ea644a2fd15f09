-- `user` is a reserved word in PostgreSQL; both backends call the table
-- `account`, so that one SQL text serves both.
alter table user rename to account;
