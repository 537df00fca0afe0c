-- Token changes are told to the services' token caches (common/src/auth_cache.c): a cache
-- remembers tokens that authenticated, listens on channel casb_api_tokens, and forgets
-- everything when notified. So every change that can make a remembered answer wrong
-- notifies: a row deleted (an account's deletion cascades here), and a row changed in
-- anything but last_used_at, which authentication itself writes about once a minute per
-- token. The row is compared whole, less that column, so a column added later notifies too.
-- A new token needs no notification: only tokens that authenticated are remembered.
--
-- NOTIFY is delivered when the transaction commits, once per distinct payload however many
-- rows fired it.
CREATE OR REPLACE FUNCTION api_tokens_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('casb_api_tokens', '');
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS api_tokens_changed ON api_tokens;
CREATE TRIGGER api_tokens_changed AFTER UPDATE ON api_tokens FOR EACH ROW
    WHEN ((to_jsonb(OLD) - 'last_used_at') IS DISTINCT FROM (to_jsonb(NEW) - 'last_used_at'))
    EXECUTE FUNCTION api_tokens_notify();
DROP TRIGGER IF EXISTS api_tokens_gone ON api_tokens;
CREATE TRIGGER api_tokens_gone AFTER DELETE OR TRUNCATE ON api_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION api_tokens_notify();
