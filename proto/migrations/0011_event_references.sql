-- A timeline event's finding_id and instance_id are plain references, no longer foreign
-- keys; a trigger deletes the events of deleted findings, as the cascade of the key did.
--
-- Why: a foreign key checks each inserted row with a query of its own, and ingest writes a
-- detected event for every new instance. The two keys of finding_events were a third of
-- ingest's database time (the ingest benchmark, 200,000 instances: 9.3 s, 7.0 s without
-- them). The instance key also locked each new instance row (the check is SELECT ... FOR
-- KEY SHARE), one more heap write and WAL record per instance.
--
-- What the keys guarded, and what does now:
-- - Instances are never deleted on their own, only with their finding (the cascade of
--   finding_instances.finding_id); their events then go with the finding too.
-- - Every writer of an event names a finding and instance its own statement has just
--   written or locked: ingest inserts the instance (its key locks the finding row) or
--   updates it, triage updates the finding or the instance. A transaction deleting the
--   finding waits for that lock; the trigger's DELETE then runs with a newer snapshot and
--   sees the committed event. So no event outlives its finding, even one written
--   concurrently with the delete.
-- - The trigger runs once per statement over the deleted rows (a transition table), after
--   the statement's row-level cascades, which are the ones that wait.
ALTER TABLE finding_events DROP CONSTRAINT IF EXISTS finding_events_instance_id_fkey;
ALTER TABLE finding_events DROP CONSTRAINT IF EXISTS finding_events_finding_id_fkey;
-- It served only the instance key's cascade; the timeline reads instances by their own key.
DROP INDEX IF EXISTS finding_events_instance;

CREATE OR REPLACE FUNCTION finding_events_of_deleted_findings() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    DELETE FROM finding_events e USING deleted_findings d WHERE e.finding_id = d.id;
    RETURN NULL;
END $$;

CREATE TRIGGER findings_delete_events AFTER DELETE ON findings
    REFERENCING OLD TABLE AS deleted_findings
    FOR EACH STATEMENT EXECUTE FUNCTION finding_events_of_deleted_findings();
