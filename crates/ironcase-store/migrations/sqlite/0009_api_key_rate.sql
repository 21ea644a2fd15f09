-- An API key may be held to fewer requests per minute than its organisation's
-- plan allows (a noisy integration). Null: the plan's limit.
alter table api_key add column rate_per_minute integer;
