-- Audit log of the integration-manager: who did what to which integration, and how it
-- ended. integration_id has no foreign key on purpose: the entries of an integration
-- outlive its deletion (the delete itself is one of them). details never holds a secret:
-- which fields changed, the refusal's detail, a scan id.
CREATE TABLE audit_log (
    id              bigserial PRIMARY KEY,
    account_id      uuid NOT NULL,
    at              timestamptz NOT NULL DEFAULT now(),
    actor           text NOT NULL,            -- the token's name
    action          text NOT NULL CHECK (action IN ('create', 'update', 'pause', 'resume',
                                                    'delete', 'reauthorize', 'scan_now')),
    integration_id  uuid,
    outcome         text NOT NULL CHECK (outcome IN ('success', 'failure')),
    status_code     integer NOT NULL,
    details         jsonb
);
-- GET /v1/audit-log: newest first per account, optionally of one integration.
CREATE INDEX audit_log_account ON audit_log (account_id, id DESC);
CREATE INDEX audit_log_integration ON audit_log (account_id, integration_id, id DESC);
