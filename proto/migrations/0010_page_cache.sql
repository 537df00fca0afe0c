-- Conditional requests of provider scans (ETag / If-None-Match, which GitHub does not count
-- against the rate limit): per integration and URL, the ETag, body and next-page link of the
-- last 2xx answer, so that a rescan answered 304 Not Modified still evaluates the page. Read
-- and written by every scanner-worker replica; deleted with the integration; the entries a
-- completed scan did not use (a repository gone, a shorter list) are pruned after it.
CREATE TABLE IF NOT EXISTS provider_page_cache (
    integration_id  uuid NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    url             text NOT NULL,
    etag            text NOT NULL,
    body            text NOT NULL,
    next_url        text,
    used_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (integration_id, url)
);
