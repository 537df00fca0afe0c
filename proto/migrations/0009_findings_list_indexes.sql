-- The findings list's orders, as indexes (findings-api's fa_store.c writes each sort key the
-- same way): an account's first page, and each page after a cursor, is an index range scan
-- that stops after the page, instead of reading and sorting all the account's findings. With
-- 18,000 findings per account (1,000 integrations) a page took about 6 ms of sorting; found
-- by the query benchmark (tests/bench/queries). The last_seen order stays unindexed (its key
-- is computed from a timestamp).
CREATE INDEX IF NOT EXISTS findings_by_severity ON findings
    (account_id, (CASE severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1 WHEN 'medium' THEN 2
                  ELSE 3 END), (-instance_count), id);
CREATE INDEX IF NOT EXISTS findings_by_instance_count ON findings
    (account_id, (-instance_count), (CASE severity WHEN 'critical' THEN 0 WHEN 'high' THEN 1
                                      WHEN 'medium' THEN 2 ELSE 3 END), id);
