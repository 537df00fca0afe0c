-- An instance's details are shown, never queried: they are kept as the JSON text the scanner
-- sent (json) rather than as jsonb, which PostgreSQL turns back into text on every read. A
-- page of 200 instances (GET /v1/findings/{id}/instances) spent a fifth of its database time
-- writing jsonb out: 0.45 ms of backend CPU a page as jsonb, 0.37 ms as json (the query
-- benchmark's largest finding, read by one connection). Ingest reads its message as json
-- too, so the details are not built into jsonb on the way in either.
--
-- The change rewrites the table, under an exclusive lock for as long as that takes (3.5 s a
-- million instances on the benchmark machine). The services apply migrations as they start,
-- the first of them under an advisory lock.
ALTER TABLE finding_instances ALTER COLUMN details DROP DEFAULT;
ALTER TABLE finding_instances ALTER COLUMN details TYPE json USING details::json;
ALTER TABLE finding_instances ALTER COLUMN details SET DEFAULT '{}'::json;
