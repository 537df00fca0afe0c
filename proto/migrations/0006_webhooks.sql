-- Webhooks of findings-api: destinations that receive each new or reopened finding instance.

-- A destination. Its secrets (basic password, bearer token, static header values, HMAC
-- signing secret) are sealed like integration credentials: auth_sealed is a
-- casb_secret_seal envelope of a JSON object, NULL when auth_type is 'none'. auth_public
-- holds what may be shown back (the basic username, the static headers' names).
-- Empty filter arrays mean "all".
CREATE TABLE webhooks (
    id               uuid PRIMARY KEY,
    account_id       uuid NOT NULL REFERENCES accounts (id),
    name             text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    url              text NOT NULL,
    auth_type        text NOT NULL CHECK (auth_type IN ('none', 'basic', 'bearer', 'headers',
                                                        'hmac_sha256')),
    auth_public      jsonb NOT NULL DEFAULT '{}'::jsonb,
    auth_sealed      text,
    auth_key_id      text,
    finding_types    text[] NOT NULL DEFAULT '{}',
    severities       text[] NOT NULL DEFAULT '{}',
    integration_ids  uuid[] NOT NULL DEFAULT '{}',
    enabled          boolean NOT NULL DEFAULT true,
    created_by       text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    CHECK ((auth_type = 'none') = (auth_sealed IS NULL)),
    CHECK ((auth_sealed IS NULL) = (auth_key_id IS NULL))
);
-- Ingest joins each new event with the account's enabled webhooks.
CREATE INDEX webhooks_account ON webhooks (account_id) WHERE enabled;

-- One delivery of one event to one webhook, written by ingest in the transaction that records
-- the event (an outbox: nothing is delivered for an event that was rolled back, and nothing
-- committed is lost). The delivery's id is the idempotency key the receiver sees on every
-- attempt. A sender claims a due pending delivery by moving next_attempt_at past its attempt
-- (the lease): a sender that dies mid-attempt leaves it due again, hence at-least-once.
CREATE TABLE webhook_deliveries (
    id                uuid PRIMARY KEY,
    seq               bigserial NOT NULL,      -- listing order and cursor
    webhook_id        uuid NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    account_id        uuid NOT NULL,
    event_type        text NOT NULL CHECK (event_type IN ('instance.detected',
                                                          'instance.reopened', 'webhook.test')),
    -- The timeline event delivered (NULL for a test): deleting the finding (and so the
    -- integration) drops what was not yet delivered.
    event_id          bigint REFERENCES finding_events (id) ON DELETE CASCADE,
    finding_id        uuid,
    instance_id       uuid,
    status            text NOT NULL DEFAULT 'pending'
                      CHECK (status IN ('pending', 'succeeded', 'failed')),
    attempts          integer NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    last_attempt_at   timestamptz,
    last_status_code  integer,
    last_error        text,
    delivered_at      timestamptz,
    created_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (webhook_id, event_id)
);
-- The senders' queue: due pending deliveries, oldest first.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE status = 'pending';
-- GET /v1/webhooks/{id}/deliveries: newest first.
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, seq DESC);
