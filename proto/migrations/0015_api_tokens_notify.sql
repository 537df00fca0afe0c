-- Token changes are told to the services' token caches (common/src/auth_cache.c): a cache
-- remembers tokens that authenticated, listens on channel casb_api_tokens, and forgets
-- everything when notified. So every change that can make a remembered answer wrong
-- notifies: a row deleted (an account's deletion cascades here), and any column changed but
-- last_used_at, which authentication itself writes about once a minute per token. A new
-- token needs no notification: only tokens that authenticated are remembered.
--
-- A statement trigger: one notification per statement however many rows it changed, and
-- NOTIFY itself is delivered when the transaction commits, once per distinct payload.
CREATE OR REPLACE FUNCTION api_tokens_notify() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('casb_api_tokens', '');
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS api_tokens_changed ON api_tokens;
CREATE TRIGGER api_tokens_changed
    AFTER UPDATE OF id, account_id, name, role, secret_sha256, bootstrap, created_by,
                    created_at, expires_at, revoked_at
    OR DELETE OR TRUNCATE ON api_tokens
    FOR EACH STATEMENT EXECUTE FUNCTION api_tokens_notify();
