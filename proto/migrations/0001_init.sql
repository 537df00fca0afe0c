-- The foundation schema. Owners: integration-manager (accounts, integrations),
-- scheduler (scan_outbox, dispatch of scans), scanner-worker (scan leases),
-- findings-api (findings, finding_instances, ingested_batches, scan outcomes).

CREATE TABLE accounts (
    id          uuid PRIMARY KEY,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
INSERT INTO accounts (id, name) VALUES ('00000000-0000-0000-0000-000000000001', 'default');

CREATE TABLE integrations (
    id                  uuid PRIMARY KEY,
    account_id          uuid NOT NULL REFERENCES accounts (id),
    provider            text NOT NULL,
    name                text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    config              jsonb NOT NULL DEFAULT '{}'::jsonb,   -- non-secret settings
    credentials_sealed  text NOT NULL,                         -- AES-256-GCM envelope (crypto.h)
    credentials_key_id  text NOT NULL,                         -- key id of the envelope, for rotation
    health              text NOT NULL DEFAULT 'initializing'
                        CHECK (health IN ('initializing', 'healthy', 'unhealthy',
                                          'needs_reauthorization', 'paused')),
    health_reason       text,
    paused              boolean NOT NULL DEFAULT false,
    scan_interval_s     integer NOT NULL CHECK (scan_interval_s BETWEEN 3600 AND 86400),
    next_scan_at        timestamptz,
    last_scan_at        timestamptz,
    last_scan_status    text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX integrations_account ON integrations (account_id, created_at, id);
-- The scheduler's claim scans only due, unpaused rows: its cost does not grow with the
-- number of integrations that are not due.
CREATE INDEX integrations_due ON integrations (next_scan_at) WHERE NOT paused;

CREATE TABLE scans (
    id              uuid PRIMARY KEY,
    account_id      uuid NOT NULL,
    integration_id  uuid NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    reason          text NOT NULL CHECK (reason IN ('scheduled', 'manual', 'first', 'resume')),
    status          text NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    queued_at       timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    worker_id       text,
    lease_until     timestamptz,          -- a running scan whose lease passed may be taken over
    error           text,
    stats           jsonb,
    coverage        jsonb
);
CREATE INDEX scans_integration ON scans (integration_id, queued_at DESC);
CREATE INDEX scans_open ON scans (integration_id) WHERE status IN ('queued', 'running');

-- Transactional outbox of scan jobs: written in the same transaction as the scan row,
-- published to casb.scan.jobs by the scheduler's relay, marked sent on the delivery report.
CREATE TABLE scan_outbox (
    id              bigserial PRIMARY KEY,
    scan_id         uuid NOT NULL REFERENCES scans (id) ON DELETE CASCADE,
    integration_id  uuid NOT NULL,
    payload         text NOT NULL,        -- the casb.scan.job/v1 message
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz
);
CREATE INDEX scan_outbox_pending ON scan_outbox (id) WHERE sent_at IS NULL;

-- Queues a scan of one integration: the scan row and its job in the outbox, atomically.
-- Returns the scan id, or NULL when the integration has a scan queued or running already
-- (a manual request then answers with that scan instead of piling up another).
CREATE FUNCTION casb_enqueue_scan(p_integration uuid, p_reason text) RETURNS uuid
LANGUAGE plpgsql AS $$
DECLARE
    v_scan uuid := gen_random_uuid();
    v_account uuid;
    v_provider text;
BEGIN
    SELECT account_id, provider INTO v_account, v_provider
      FROM integrations WHERE id = p_integration FOR UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF EXISTS (SELECT 1 FROM scans WHERE integration_id = p_integration
                                     AND status IN ('queued', 'running')) THEN
        RETURN NULL;
    END IF;
    INSERT INTO scans (id, account_id, integration_id, reason)
         VALUES (v_scan, v_account, p_integration, p_reason);
    INSERT INTO scan_outbox (scan_id, integration_id, payload)
         VALUES (v_scan, p_integration, json_build_object(
                    'schema', 'casb.scan.job/v1',
                    'job_id', gen_random_uuid(),
                    'scan_id', v_scan,
                    'account_id', v_account,
                    'integration_id', p_integration,
                    'provider', v_provider,
                    'reason', p_reason,
                    'requested_at', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
                 )::text);
    RETURN v_scan;
END $$;

CREATE TABLE findings (
    id              uuid PRIMARY KEY,
    account_id      uuid NOT NULL,
    integration_id  uuid NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    finding_type    text NOT NULL,
    severity        text NOT NULL CHECK (severity IN ('critical', 'high', 'medium', 'low')),
    status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'ignored')),
    instance_count  integer NOT NULL DEFAULT 0,   -- instances in state 'active'
    first_seen_at   timestamptz NOT NULL,
    last_seen_at    timestamptz NOT NULL,
    UNIQUE (integration_id, finding_type)
);
CREATE INDEX findings_account ON findings (account_id, severity, instance_count DESC, id);

CREATE TABLE finding_instances (
    id              uuid PRIMARY KEY,
    finding_id      uuid NOT NULL REFERENCES findings (id) ON DELETE CASCADE,
    integration_id  uuid NOT NULL,
    asset_kind      text NOT NULL,
    asset_id        text NOT NULL,
    asset_name      text NOT NULL,
    asset_url       text,
    details         jsonb NOT NULL DEFAULT '{}'::jsonb,
    state           text NOT NULL DEFAULT 'active' CHECK (state IN ('active', 'hidden', 'resolved')),
    first_seen_at   timestamptz NOT NULL,
    last_seen_at    timestamptz NOT NULL,
    last_scan_id    uuid NOT NULL,
    last_scan_started_at timestamptz NOT NULL,   -- orders sightings when messages arrive late
    resolved_at     timestamptz,
    UNIQUE (finding_id, asset_id)
);
CREATE INDEX finding_instances_finding ON finding_instances (finding_id, state, id);

-- Ingest idempotency: a (scan, sequence) result message is applied once.
CREATE TABLE ingested_batches (
    scan_id     uuid NOT NULL,
    seq         integer NOT NULL,
    kind        text NOT NULL,
    instances   integer NOT NULL DEFAULT 0,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (scan_id, seq)
);
