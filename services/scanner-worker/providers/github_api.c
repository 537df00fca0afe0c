/* GitHub REST calls: GitHub's headers, the JSON body, the error classification, and Link
 * pagination. Retries and rate-limit waits happen below, in the shared HTTP client; what
 * reaches this file is the final answer. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "casb/error.h"
#include "casb/json.h"
#include "casb/log.h"
#include "github_internal.h"

/* More pages than this means a server that keeps answering "next" forever. */
#define MAX_PAGES 100000L

void casb_github_resp_clear(casb_github_resp *r)
{
    if (!r)
        return;
    json_decref(r->body);
    free(r->next_url);
    free(r->raw);
    memset(r, 0, sizeof(*r));
}

static int cancelled(const casb_github_client *c)
{
    return c->cancel && *c->cancel;
}

/* Length of the scheme://host[:port] part of url (0 when url has no scheme). */
static size_t origin_len(const char *url)
{
    const char *p = strstr(url, "://");

    if (!p)
        return 0;
    p += 3;
    return (size_t)(p - url) + strcspn(p, "/?#");
}

/* Resolves path_or_url against the base URL. An absolute URL (a Link from GitHub) must lie
 * below the base URL: following a link to another origin would hand it our token. */
static int resolve_url(const casb_github_client *c, const char *path_or_url, char **out,
                       char *err, size_t errlen)
{
    size_t blen = strlen(c->base_url);
    size_t olen = origin_len(c->base_url);
    char *url;

    *out = NULL;
    if (strncasecmp(path_or_url, "http://", 7) == 0 ||
        strncasecmp(path_or_url, "https://", 8) == 0) {
        if (strncmp(path_or_url, c->base_url, blen) != 0 ||
            (path_or_url[blen] != '\0' && path_or_url[blen] != '/' && path_or_url[blen] != '?'))
            return casb_fail(err, errlen, CASB_ERROR,
                             "refusing to follow a GitHub link outside the API base URL");
        url = strdup(path_or_url);
    } else if (path_or_url[0] == '/') {
        /* A path: below the base URL when we built it; a root-relative Link when it already
         * starts with the base URL's own path (GitHub Enterprise Server's /api/v3). */
        const char *base_path = c->base_url + olen;
        size_t plen = strlen(base_path);

        if (plen > 0 && strncmp(path_or_url, base_path, plen) == 0 &&
            (path_or_url[plen] == '/' || path_or_url[plen] == '?'))
            blen = olen;
        if (asprintf(&url, "%.*s%s", (int)blen, c->base_url, path_or_url) < 0)
            url = NULL;
    } else {
        return casb_fail(err, errlen, CASB_ERROR, "bad GitHub path");
    }
    if (!url)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    *out = url;
    return 0;
}

/* The part of url after the base URL, for messages ("/orgs/acme/repos?..."). */
static const char *short_url(const casb_github_client *c, const char *url)
{
    size_t blen = strlen(c->base_url);

    if (strncmp(url, c->base_url, blen) == 0 && url[blen] != '\0')
        return url + blen;
    return url;
}

static int is_rate_limited(const casb_http_response *hr, const char *message)
{
    char buf[64];

    if (hr->status == 429)
        return 1;
    if (hr->status != 403)
        return 0;
    if (casb_http_response_header(hr, "x-ratelimit-remaining", buf, sizeof(buf)) == 1 &&
        strcmp(buf, "0") == 0)
        return 1;
    if (casb_http_response_header(hr, "retry-after", buf, sizeof(buf)) == 1)
        return 1;
    /* Secondary limits are told apart only by their wording. */
    return message && (strcasestr(message, "rate limit") || strcasestr(message, "abuse"));
}

/* What GitHub says a refused call needs. Apps and fine-grained tokens get
 * X-Accepted-GitHub-Permissions ("members=read"); classic tokens X-Accepted-OAuth-Scopes
 * ("admin:org, read:org"), which GitHub also sends, empty, on calls that need no scope. */
static void read_needed_permission(const casb_http_response *hr, casb_github_resp *r)
{
    char buf[sizeof(r->needed_permission)];

    r->needed_permission[0] = '\0';
    if (casb_http_response_header(hr, "x-accepted-github-permissions", buf, sizeof(buf)) == 1 &&
        buf[0]) {
        snprintf(r->needed_permission, sizeof(r->needed_permission), "%s", buf);
        return;
    }
    if (casb_http_response_header(hr, "x-accepted-oauth-scopes", buf, sizeof(buf)) == 1 &&
        buf[0])
        snprintf(r->needed_permission, sizeof(r->needed_permission), "%s", buf);
}

/* Keeps what a page cache stores of a 2xx answer: its ETag and its raw body. */
static int keep_for_cache(const casb_http_response *hr, casb_github_resp *r, char *err,
                          size_t errlen)
{
    if (hr->status < 200 || hr->status >= 300 ||
        casb_http_response_header(hr, "etag", r->etag, sizeof(r->etag)) != 1 || !r->etag[0]) {
        r->etag[0] = '\0'; /* none, or too long to be one of GitHub's: nothing to store */
        return 0;
    }
    r->raw = malloc(hr->body_len + 1);
    if (!r->raw)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    memcpy(r->raw, hr->body, hr->body_len);
    r->raw[hr->body_len] = '\0';
    r->raw_len = hr->body_len;
    return 0;
}

/* Fills r from one HTTP response (and, with keep_raw, what a page cache stores). Returns 0,
 * 1 when a 2xx body is not JSON, -1 on failure. */
static int read_response(const casb_github_client *c, const casb_http_response *hr,
                         casb_github_resp *r, const char *url, int keep_raw, char *err,
                         size_t errlen)
{
    char link[8192], next[4096], perr[256];
    int lr;

    r->status = hr->status;
    if (casb_http_response_header(hr, "link", link, sizeof(link)) == 1) {
        lr = casb_http_link_rel(link, "next", next, sizeof(next));
        if (lr < 0)
            return casb_fail(err, errlen, CASB_ERROR, "GitHub Link header too long at %s",
                             short_url(c, url));
        if (lr == 1) {
            r->next_url = strdup(next);
            if (!r->next_url)
                return casb_fail(err, errlen, CASB_ERROR, "out of memory");
        }
    }
    if (hr->body_len > 0) {
        r->body = casb_json_parse(hr->body, hr->body_len, 0, perr, sizeof(perr));
        if (!r->body && hr->status >= 200 && hr->status < 300) {
            casb_fail(err, errlen, CASB_ERROR, "malformed JSON from GitHub at %s: %s",
                      short_url(c, url), perr);
            return 1;
        }
    }
    if (hr->status < 200 || hr->status >= 300) {
        const char *msg = casb_json_str(r->body, "message");

        snprintf(r->message, sizeof(r->message), "%s", msg ? msg : "");
        r->rate_limited = is_rate_limited(hr, msg);
        read_needed_permission(hr, r);
    }
    if (keep_raw && r->body)
        return keep_for_cache(hr, r, err, errlen);
    return 0;
}

/* casb_github_request, plus a conditional GET's If-None-Match (NULL: none) and keep_raw
 * (keep the ETag and raw body of a 2xx for the page cache). */
static int request(casb_github_client *c, const char *method, const char *path_or_url,
                   const char *bearer, const char *body, const char *if_none_match,
                   int keep_raw, casb_github_resp *out, char *err, size_t errlen)
{
    char *url = NULL;
    char *auth = NULL;
    char *inm = NULL;
    casb_http_response *hr = NULL;
    const char *headers[7];
    char herr[256], status[16];
    size_t nh = 0;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = resolve_url(c, path_or_url, &url, err, errlen);
    if (rc != 0)
        return rc;
    if (asprintf(&auth, "Authorization: Bearer %s", bearer ? bearer : "") < 0) {
        auth = NULL;
        rc = casb_fail(err, errlen, CASB_ERROR, "out of memory");
        goto out;
    }
    headers[nh++] = "Accept: application/vnd.github+json";
    headers[nh++] = "X-GitHub-Api-Version: 2022-11-28";
    headers[nh++] = auth;
    if (body)
        headers[nh++] = "Content-Type: application/json";
    if (if_none_match) {
        if (asprintf(&inm, "If-None-Match: %s", if_none_match) < 0) {
            inm = NULL;
            rc = casb_fail(err, errlen, CASB_ERROR, "out of memory");
            goto out;
        }
        headers[nh++] = inm;
    }
    headers[nh] = NULL;

    /* A malformed 2xx body (a truncated transfer) is worth one more try for a GET. */
    for (int attempt = 0; attempt < 2; attempt++) {
        if (cancelled(c)) {
            rc = casb_fail(err, errlen, CASB_ERROR, "scan cancelled");
            goto out;
        }
        casb_github_resp_clear(out);
        rc = casb_http_request(c->http, &hr, method, url, headers, body,
                               body ? strlen(body) : 0, herr, sizeof(herr));
        if (rc != 0) {
            if (cancelled(c))
                rc = casb_fail(err, errlen, CASB_ERROR, "scan cancelled");
            else
                rc = casb_fail(err, errlen, CASB_EUNAVAILABLE, "GitHub unreachable at %s %s: %s",
                               method, short_url(c, url), herr);
            goto out;
        }
        snprintf(status, sizeof(status), "%ld", hr->status);
        casb_log_debug("github request", "method", method, "path", short_url(c, url), "status",
                       status);
        rc = read_response(c, hr, out, url, keep_raw, err, errlen);
        casb_http_response_free(hr);
        hr = NULL;
        if (rc == 1 && attempt == 0 && strcmp(method, "GET") == 0)
            continue;
        if (rc == 1)
            rc = CASB_ERROR;
        goto out;
    }
out:
    if (rc != 0)
        casb_github_resp_clear(out);
    casb_http_response_free(hr);
    if (auth) {
        explicit_bzero(auth, strlen(auth));
        free(auth);
    }
    free(inm);
    free(url);
    return rc;
}

int casb_github_request(casb_github_client *c, const char *method, const char *path_or_url,
                        const char *bearer, const char *body, casb_github_resp *out,
                        char *err, size_t errlen)
{
    return request(c, method, path_or_url, bearer, body, NULL, 0, out, err, errlen);
}

/* The page cache only saves requests: when it fails, the scan goes on without it. */
static void cache_failed(casb_github_client *c, const char *what, const char *why)
{
    casb_log_warn("page cache failed; the rest of the scan sends unconditional requests",
                  "organization", c->org, "operation", what, "error", why);
    c->cache = NULL;
}

/* A 304 answers the stored page: its body and next link stand for the 200 it repeats. */
static int answer_from_cache(casb_github_client *c, casb_github_resp *out, const char *url,
                             const char *body, size_t body_len, char **next_url, char *err,
                             size_t errlen)
{
    char perr[256];
    json_t *doc = casb_json_parse(body, body_len, 0, perr, sizeof(perr));

    if (!doc)
        return casb_fail(err, errlen, CASB_ERROR, "cached page of %s is not JSON: %s",
                         short_url(c, url), perr);
    json_decref(out->body);
    free(out->next_url);
    out->body = doc;
    out->next_url = *next_url;
    *next_url = NULL;
    out->status = 200;
    out->not_modified = 1;
    out->message[0] = '\0';
    c->cache->hits++;
    return 0;
}

/* The GET itself, with the 401 retry of a revoked installation or OAuth token. */
static int get_once(casb_github_client *c, const char *url, const char *etag,
                    casb_github_resp *out, char *err, size_t errlen)
{
    int keep_raw = c->cache != NULL;
    int rc;

    rc = request(c, "GET", url, c->token, NULL, etag, keep_raw, out, err, errlen);
    if (rc != 0 || out->status != 401 || (!c->app && !c->oauth))
        return rc;
    /* An installation or OAuth token can be revoked before it expires (app reinstalled,
     * permissions changed, token reset): get a fresh one once before calling the credentials
     * bad. */
    casb_github_resp_clear(out);
    casb_github_auth_invalidate(c);
    rc = casb_github_auth_ensure(c, err, errlen);
    if (rc != 0)
        return rc;
    return request(c, "GET", url, c->token, NULL, etag, keep_raw, out, err, errlen);
}

int casb_github_get(casb_github_client *c, const char *path_or_url, casb_github_resp *out,
                    char *err, size_t errlen)
{
    char *url = NULL, *etag = NULL, *body = NULL, *next_url = NULL;
    char cerr[256];
    size_t body_len = 0;
    int cached = 0, rc;

    memset(out, 0, sizeof(*out));
    rc = casb_github_auth_ensure(c, err, errlen);
    if (rc != 0)
        return rc;
    if (!c->cache)
        return get_once(c, path_or_url, NULL, out, err, errlen);
    /* Entries are keyed by the absolute URL, as Link headers name the pages. */
    rc = resolve_url(c, path_or_url, &url, err, errlen);
    if (rc != 0)
        return rc;
    cached = c->cache->get(c->cache, url, &etag, &body, &body_len, &next_url, cerr,
                           sizeof(cerr));
    if (cached < 0) {
        cache_failed(c, "get", cerr);
        cached = 0;
    }
    rc = get_once(c, url, cached ? etag : NULL, out, err, errlen);
    if (rc != 0)
        goto out;
    if (cached && out->status == 304) {
        rc = answer_from_cache(c, out, url, body, body_len, &next_url, err, errlen);
        goto out;
    }
    if (c->cache && out->raw && out->etag[0] &&
        c->cache->put(c->cache, url, out->etag, out->raw, out->raw_len, out->next_url, cerr,
                      sizeof(cerr)) != 0)
        cache_failed(c, "put", cerr);
out:
    if (out->raw) {
        free(out->raw);
        out->raw = NULL;
        out->raw_len = 0;
    }
    free(url);
    free(etag);
    free(body);
    free(next_url);
    return rc;
}

int casb_github_status_error(const casb_github_resp *r, const char *what, char *err,
                             size_t errlen)
{
    const char *msg = r->message[0] ? r->message : "no message";

    if (r->status == 401)
        return casb_fail(err, errlen, CASB_EAUTH, "GitHub rejected the credentials: %s", msg);
    if (r->rate_limited)
        return casb_fail(err, errlen, CASB_EUNAVAILABLE,
                         "GitHub's rate limit stayed exhausted after waiting (%s: %ld %s)", what,
                         r->status, msg);
    if (r->status >= 500 || r->status == 0)
        return casb_fail(err, errlen, CASB_EUNAVAILABLE,
                         "GitHub answered %ld repeatedly (%s: %s)", r->status, what, msg);
    if (r->status == 403)
        return casb_fail(err, errlen, CASB_GITHUB_EFORBIDDEN, "%s: 403 %s", what, msg);
    if (r->status == 404)
        return casb_fail(err, errlen, CASB_ENOTFOUND, "%s: 404 %s", what, msg);
    return casb_fail(err, errlen, CASB_GITHUB_EREJECTED, "%s: %ld %s", what, r->status, msg);
}

int casb_github_org_refused(const casb_github_resp *r, const char *org, char *err,
                            size_t errlen)
{
    const char *msg = r->message[0] ? r->message : "no message";

    if (r->status == 403 && r->needed_permission[0])
        return casb_fail(err, errlen, CASB_EAUTH,
                         "the credentials lack the permission %s needed to read organization "
                         "%s (GitHub: %s)",
                         r->needed_permission, org, msg);
    if (r->status == 403)
        return casb_fail(err, errlen, CASB_EAUTH,
                         "GitHub refused these credentials access to organization %s: %s", org,
                         msg);
    return casb_fail(err, errlen, CASB_EAUTH,
                     "organization %s not found or not visible with these credentials: %s", org,
                     msg);
}

int casb_github_paginate(casb_github_client *c, const char *path, const char *list_key,
                         casb_github_page_fn fn, void *ud, char *err, size_t errlen)
{
    casb_github_resp resp;
    char *url = NULL;
    char what[512];
    json_t *items;
    long pages = 0;
    int rc = 0;

    memset(&resp, 0, sizeof(resp));
    url = strdup(path);
    if (!url)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    while (url) {
        if (++pages > MAX_PAGES) {
            rc = casb_fail(err, errlen, CASB_ERROR, "GET %s: too many pages", path);
            goto out;
        }
        rc = casb_github_get(c, url, &resp, err, errlen);
        if (rc != 0)
            goto out;
        snprintf(what, sizeof(what), "GET %s", short_url(c, url));
        if (resp.status < 200 || resp.status >= 300) {
            rc = casb_github_status_error(&resp, what, err, errlen);
            goto out;
        }
        items = resp.body;
        if (items && list_key)
            items = json_object_get(items, list_key);
        if (!resp.body) {
            /* Some list endpoints answer 204 with no body instead of []. */
            rc = 0;
            goto out;
        }
        if (!json_is_array(items)) {
            rc = casb_fail(err, errlen, CASB_ERROR, "%s: unexpected response shape (%s)", what,
                           list_key ? list_key : "array expected");
            goto out;
        }
        rc = fn(ud, items, err, errlen);
        if (rc != 0)
            goto out;
        if (resp.next_url && strcmp(resp.next_url, url) == 0) {
            rc = casb_fail(err, errlen, CASB_ERROR, "%s: Link rel=\"next\" points to itself",
                           what);
            goto out;
        }
        free(url);
        url = resp.next_url; /* NULL on the last page */
        resp.next_url = NULL;
        casb_github_resp_clear(&resp);
    }
out:
    casb_github_resp_clear(&resp);
    free(url);
    return rc;
}
