-- Scan attempts. A scan whose worker died (or lost its lease) is taken over by another
-- worker, which rescans from the start and numbers its result messages 1..N again. Each
-- lease taken is a new attempt: the worker stamps its messages with the attempt number and
-- the attempt's start, and findings-api keys idempotency on (scan, attempt, seq), so the
-- second attempt's messages are not mistaken for duplicates of the first one's.

-- attempt: incremented by every lease taken (0: never leased). attempt_started_at: when the
-- current attempt took the lease; it is the scan_started_at of that attempt's messages, so a
-- completed attempt resolves what it did not see, including what only a dead attempt saw.
ALTER TABLE scans
    ADD COLUMN attempt integer NOT NULL DEFAULT 0,
    ADD COLUMN attempt_started_at timestamptz;

-- Scans leased before this migration ran had exactly one attempt as far as anyone knows.
UPDATE scans SET attempt = 1, attempt_started_at = started_at WHERE started_at IS NOT NULL;

-- Batches recorded before this migration belong to those first attempts.
ALTER TABLE ingested_batches
    ADD COLUMN attempt integer NOT NULL DEFAULT 1;
ALTER TABLE ingested_batches
    DROP CONSTRAINT ingested_batches_pkey,
    ADD PRIMARY KEY (scan_id, attempt, seq);
