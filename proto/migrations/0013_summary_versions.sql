-- The version of each account's summary (GET /v1/summary): the transaction that last
-- changed what the summary shows, written as it commits. findings-api keeps an account's
-- rendered summary and serves it again while this row still names the transaction it read
-- before rendering (fa_summary.c). Rendering is a scan of the account's active findings and
-- a row per integration: 13 ms of SQL and 228 KB of JSON for the query benchmark's account
-- (1,000 integrations, 17,692 findings), which a dashboard asks for on every refresh.
--
-- What changes the summary, and so the version: a finding inserted or deleted (with its
-- integration too), its status, severity, type or active instance count; an integration
-- inserted or deleted, its name, provider, health or last scan. Not ingest's last_seen_at
-- of a finding seen again, nor the scheduler's next_scan_at.
--
-- Why deferred row triggers (constraint triggers) rather than a statement's: the row is
-- locked by the transaction writing it until that commits. Locked at the statement that
-- changed a finding, it would be held while the transaction went on to lock other rows:
-- ingest (findings, then their instance counts) and triage (the findings' statuses) of one
-- account could each hold a row the other waits for. Deferred, it is each transaction's
-- last lock, held only while the transaction commits. The first event of a transaction
-- writes the row; its others find it written by their own transaction and change nothing.
--
-- No foreign key to accounts: the row is written as the transaction commits, and one that
-- deleted an account's integrations and then the account would fail there.
CREATE TABLE IF NOT EXISTS summary_versions (
    account_id  uuid PRIMARY KEY,
    changed_by  xid8 NOT NULL
);

CREATE OR REPLACE FUNCTION summary_version_bump() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO summary_versions AS v (account_id, changed_by)
    VALUES (CASE WHEN TG_OP = 'DELETE' THEN OLD.account_id ELSE NEW.account_id END,
            pg_current_xact_id())
    ON CONFLICT (account_id) DO UPDATE SET changed_by = excluded.changed_by
     WHERE v.changed_by <> excluded.changed_by;
    RETURN NULL;
END $$;

-- A WHEN that reads OLD cannot be on a trigger that also fires on INSERT: two triggers a
-- table.
DROP TRIGGER IF EXISTS findings_summary_rows ON findings;
CREATE CONSTRAINT TRIGGER findings_summary_rows AFTER INSERT OR DELETE ON findings
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION summary_version_bump();
DROP TRIGGER IF EXISTS findings_summary_values ON findings;
CREATE CONSTRAINT TRIGGER findings_summary_values
    AFTER UPDATE OF status, severity, finding_type, instance_count, integration_id ON findings
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN ((OLD.status, OLD.severity, OLD.finding_type, OLD.instance_count, OLD.integration_id)
          IS DISTINCT FROM
          (NEW.status, NEW.severity, NEW.finding_type, NEW.instance_count, NEW.integration_id))
    EXECUTE FUNCTION summary_version_bump();

DROP TRIGGER IF EXISTS integrations_summary_rows ON integrations;
CREATE CONSTRAINT TRIGGER integrations_summary_rows AFTER INSERT OR DELETE ON integrations
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION summary_version_bump();
DROP TRIGGER IF EXISTS integrations_summary_values ON integrations;
CREATE CONSTRAINT TRIGGER integrations_summary_values
    AFTER UPDATE OF name, provider, health, last_scan_status, last_scan_at ON integrations
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN ((OLD.name, OLD.provider, OLD.health, OLD.last_scan_status, OLD.last_scan_at)
          IS DISTINCT FROM
          (NEW.name, NEW.provider, NEW.health, NEW.last_scan_status, NEW.last_scan_at))
    EXECUTE FUNCTION summary_version_bump();
