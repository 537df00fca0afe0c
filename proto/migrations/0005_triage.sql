-- Triage and the timeline of findings (findings-api).

-- A severity tuned by a user survives scans (which otherwise follow the catalogue) until it
-- is reset to the catalogue's.
ALTER TABLE findings ADD COLUMN severity_tuned boolean NOT NULL DEFAULT false;

-- What the last upsert of an instance did to it ('detected' when it inserted the row,
-- 'reopened' when a resolved instance was seen again, NULL otherwise): the ingest statement
-- returns it to record the event (PostgreSQL 15 cannot return a row's old state).
ALTER TABLE finding_instances ADD COLUMN last_transition text;

-- Every transition of a finding or one of its instances, and who or which scan caused it.
-- Gone with the finding (and so with the integration): nothing of it outlives a delete.
CREATE TABLE finding_events (
    id           bigserial PRIMARY KEY,
    account_id   uuid NOT NULL,
    finding_id   uuid NOT NULL REFERENCES findings (id) ON DELETE CASCADE,
    instance_id  uuid REFERENCES finding_instances (id) ON DELETE CASCADE,
    at           timestamptz NOT NULL DEFAULT now(),
    event        text NOT NULL CHECK (event IN ('detected', 'resolved', 'reopened', 'ignored',
                                                'unignored', 'hidden', 'unhidden',
                                                'severity_changed', 'severity_reset')),
    actor        text,           -- the token's name for a user's action; NULL for a scan
    scan_id      uuid,           -- the scan that caused it
    details      jsonb           -- {"from": "high", "to": "low"} for severity changes
);
CREATE INDEX finding_events_finding ON finding_events (finding_id, id DESC);

-- One row per integration and day: its active instances of not-ignored findings by severity
-- as the day's last completed scan left them (GET /v1/trend).
CREATE TABLE integration_daily_counts (
    integration_id  uuid NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    account_id      uuid NOT NULL,
    day             date NOT NULL,
    critical        integer NOT NULL,
    high            integer NOT NULL,
    medium          integer NOT NULL,
    low             integer NOT NULL,
    PRIMARY KEY (integration_id, day)
);
CREATE INDEX integration_daily_counts_account ON integration_daily_counts (account_id, day);
