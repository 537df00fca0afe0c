-- The OAuth consent flow of integration-manager. A row is one flow begun by
-- POST /v1/integrations/oauth/{provider}/start (or a reauthorization) and ended by the
-- provider's redirect to the callback. The state travels through the user's browser; only its
-- SHA-256 is stored, so this table cannot be used to forge a callback. A state is single use
-- (used_at) and expires (expires_at). The PKCE code verifier is sealed like credentials.
CREATE TABLE oauth_states (
    state_sha256     text PRIMARY KEY,
    account_id       uuid NOT NULL REFERENCES accounts (id),
    actor            text NOT NULL,              -- who started it: the audit log's "who"
    provider         text NOT NULL,
    -- A reauthorization of this integration; NULL when the flow creates a new one. Deleting
    -- the integration deletes its flows with it (nothing of it may outlive a delete).
    integration_id   uuid REFERENCES integrations (id) ON DELETE CASCADE,
    request          jsonb NOT NULL,             -- name, config, scan_interval_s (no secrets)
    redirect_uri     text NOT NULL,              -- sent again with the code, must match
    verifier_sealed  text,                       -- casb_secret_seal envelope; NULL without PKCE
    created_at       timestamptz NOT NULL DEFAULT now(),
    expires_at       timestamptz NOT NULL,
    used_at          timestamptz
);
-- Expired flows are deleted by the next start; this finds them.
CREATE INDEX oauth_states_expiry ON oauth_states (expires_at);

ALTER TABLE audit_log DROP CONSTRAINT audit_log_action_check;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_action_check
    CHECK (action IN ('create', 'update', 'pause', 'resume', 'delete', 'reauthorize',
                      'scan_now', 'oauth_start'));
