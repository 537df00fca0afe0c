-- Indexes for the foreign keys that cascade on delete. Deleting an integration deletes its
-- findings, their instances, the instances' timeline events and the events' webhook
-- deliveries; without an index on the referencing column, each deleted row made PostgreSQL
-- scan the whole referencing table: deleting an integration of 100,000 instances took
-- minutes (quadratic), found by the Google Workspace benchmark.
CREATE INDEX finding_events_instance ON finding_events (instance_id);
CREATE INDEX webhook_deliveries_event ON webhook_deliveries (event_id);
CREATE INDEX scan_outbox_scan ON scan_outbox (scan_id);
CREATE INDEX oauth_states_integration ON oauth_states (integration_id);
-- The account's rows, whole (an account's deletion must find every one, enabled or not).
CREATE INDEX oauth_states_account ON oauth_states (account_id);
DROP INDEX webhooks_account;
CREATE INDEX webhooks_account ON webhooks (account_id);
