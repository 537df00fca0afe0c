-- The findings list's last_seen order (most recently seen first, then by id), as an index:
-- it was computed from every finding of the account and sorted, 22 ms a page for 17,692
-- findings (the query benchmark's account, EXPLAIN ANALYZE). findings-api's fa_store.c
-- orders by these columns and bounds the scan after a cursor by them.
CREATE INDEX IF NOT EXISTS findings_by_last_seen ON findings (account_id, last_seen_at DESC, id);
