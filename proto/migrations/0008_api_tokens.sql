-- API tokens: every caller of the HTTP APIs is one of an account's tokens, with a role.
-- Only the SHA-256 of a token is stored: a dump of this table gives nobody access. Tokens
-- are revoked, never deleted, so that the audit log's actors stay resolvable and a revoked
-- bootstrap token is not seeded again at the next start.
CREATE TABLE api_tokens (
    id              uuid PRIMARY KEY,
    account_id      uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name            text NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    role            text NOT NULL CHECK (role IN ('admin', 'analyst', 'read_only')),
    secret_sha256   bytea NOT NULL UNIQUE CHECK (length(secret_sha256) = 32),
    -- The token that CASB_ADMIN_TOKEN seeded at the account's first start: at most one.
    bootstrap       boolean NOT NULL DEFAULT false,
    created_by      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz,
    last_used_at    timestamptz,
    revoked_at      timestamptz
);
CREATE INDEX api_tokens_account ON api_tokens (account_id, created_at, id);
CREATE UNIQUE INDEX api_tokens_bootstrap ON api_tokens (account_id) WHERE bootstrap;

-- Issuing and revoking tokens are audited like the changes to integrations.
ALTER TABLE audit_log DROP CONSTRAINT audit_log_action_check;
ALTER TABLE audit_log ADD CONSTRAINT audit_log_action_check
    CHECK (action IN ('create', 'update', 'pause', 'resume', 'delete', 'reauthorize',
                      'scan_now', 'oauth_start', 'token_create', 'token_revoke'));
