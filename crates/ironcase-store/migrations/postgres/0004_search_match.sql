-- Full-text matching through the GIN index under row-level security.
--
-- The policy on incident_search is a security barrier: a condition of the
-- query whose function is not LEAKPROOF may not run before it, so it cannot
-- be an index condition. `@@` (ts_match_vq) is not leakproof: under the
-- policy every search read every tenant's vectors (measured: a sequential
-- scan of incident_search per search, and one per word looked up for similar
-- incidents).
--
-- These functions run as the owner of the table (which the policy does not
-- bind) and apply the same wall themselves: only the rows of the tenant the
-- transaction is scoped to (`app.tenant_id`; the platform scope `*` sees
-- nothing here, as no platform operation searches). The application's role
-- may call them, and nothing else of the owner's.

-- Each incident of the scoped tenant whose vector matches `q` (and not
-- `excluded`), with its rank. `rows 200`: the planner's guess at its size
-- (the default, 1,000, made it hash every incident of the tenant to join a
-- few hundred matches; measured 36 → 19 ms at 20,000 incidents).
create function search_match(q tsquery, excluded tsquery)
returns table (incident_id text, rank real)
language sql stable security definer
rows 200
set search_path = public, pg_temp
as $$
    select s.incident_id, ts_rank(s.search, q)
    from incident_search s
    where s.organization_id = current_setting('app.tenant_id', true)
      and s.search @@ q
      and (excluded is null or not s.search @@ excluded)
$$;

-- How many incidents of the scoped tenant match `q`, counting no further
-- than `cap`.
create function search_count(q tsquery, cap bigint)
returns bigint
language sql stable security definer
set search_path = public, pg_temp
as $$
    select count(*) from (
        select 1 from incident_search s
        where s.organization_id = current_setting('app.tenant_id', true) and s.search @@ q
        limit cap
    ) t
$$;

revoke all on function search_match(tsquery, tsquery) from public;
revoke all on function search_count(tsquery, bigint) from public;
grant execute on function search_match(tsquery, tsquery) to ironcase_app;
grant execute on function search_count(tsquery, bigint) to ironcase_app;
