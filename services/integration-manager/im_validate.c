#include "im_validate.h"

#include <stdio.h>
#include <string.h>

#include "casb/endpoint.h"
#include "casb/error.h"
#include "casb/json.h"

/* The config member providers use for a non-default API endpoint; guarded against SSRF. */
#define ENDPOINT_FIELD "api_base_url"

static int invalid(char *field, size_t fieldlen, const char *name, char *err, size_t errlen,
                   const char *msg)
{
    snprintf(field, fieldlen, "%s", name);
    return casb_fail(err, errlen, CASB_EINVALID, "%s: %s", name, msg);
}

static const casb_provider *provider_lookup(const casb_provider *const *providers,
                                            const char *id)
{
    for (size_t i = 0; providers && providers[i]; i++) {
        if (strcmp(providers[i]->id, id) == 0)
            return providers[i];
    }
    return NULL;
}

static int config_field_declared(const casb_provider *p, const char *key)
{
    if (!p->config_fields)
        return 1; /* a provider without a declared list accepts what validate() accepts */
    for (const casb_provider_field *f = p->config_fields; f->name; f++) {
        if (strcmp(f->name, key) == 0)
            return !f->secret;
    }
    return 0;
}

/* name: a string of 1..200 characters without control characters. */
static int check_name(const json_t *v, const char **out, char *field, size_t fieldlen,
                      char *err, size_t errlen)
{
    long len;

    if (!json_is_string(v))
        return invalid(field, fieldlen, "name", err, errlen, "is required (a string)");
    len = casb_json_display_length(v);
    if (len < 0)
        return invalid(field, fieldlen, "name", err, errlen, "must not contain control characters");
    if (len < 1 || len > IM_NAME_MAX_CHARS)
        return invalid(field, fieldlen, "name", err, errlen, "must have 1 to 200 characters");
    *out = json_string_value(v);
    return 0;
}

static int check_interval(const json_t *v, long *out, char *field, size_t fieldlen, char *err,
                          size_t errlen)
{
    if (!json_is_integer(v))
        return invalid(field, fieldlen, "scan_interval_s", err, errlen,
                       "must be an integer number of seconds");
    if (json_integer_value(v) < IM_SCAN_INTERVAL_MIN_S ||
        json_integer_value(v) > IM_SCAN_INTERVAL_MAX_S)
        return invalid(field, fieldlen, "scan_interval_s", err, errlen,
                       "must be between 3600 and 86400");
    *out = (long)json_integer_value(v);
    return 0;
}

static int check_object(const json_t *v, const char *name, const json_t **out, char *field,
                        size_t fieldlen, char *err, size_t errlen)
{
    if (!json_is_object(v))
        return invalid(field, fieldlen, name, err, errlen, "is required (an object)");
    *out = v;
    return 0;
}

/* Credentials a user submits: an object, without the mark of consent-flow tokens (those are
 * written by the callback only, never pasted). */
static int check_credentials(const json_t *v, const json_t **out, char *field, size_t fieldlen,
                             char *err, size_t errlen)
{
    if (check_object(v, "credentials", out, field, fieldlen, err, errlen) != 0)
        return CASB_EINVALID;
    if (json_object_get(v, "oauth"))
        return invalid(field, fieldlen, "credentials.oauth", err, errlen,
                       "OAuth tokens come from the consent flow only: "
                       "POST /v1/integrations/oauth/{provider}/start");
    return 0;
}

int im_validate_settings(const casb_provider *provider, const json_t *config,
                         const json_t *credentials, const char *allowed_endpoints, char *field,
                         size_t fieldlen, char *err, size_t errlen)
{
    const json_t *v = NULL;
    const char *key = NULL;
    json_t *member = NULL;
    char reason[256];
    char name[128];
    int rc;

    if (fieldlen)
        field[0] = '\0';
    /* Config is stored and returned as is, so nothing undeclared (a secret pasted into the
     * wrong object, a typo) may slip into it. */
    json_object_foreach((json_t *)config, key, member) {
        if (!config_field_declared(provider, key)) {
            snprintf(name, sizeof(name), "config.%.*s", casb_utf8_prefix_len(key, 100), key);
            return invalid(field, fieldlen, name, err, errlen, "unknown configuration field");
        }
    }

    if (provider->validate) {
        rc = provider->validate(config, credentials, field, fieldlen, err, errlen);
        if (rc != 0) {
            if (fieldlen && !field[0])
                snprintf(field, fieldlen, "credentials");
            return CASB_EINVALID;
        }
    }

    v = json_object_get(config, ENDPOINT_FIELD);
    if (v && !json_is_null(v)) {
        if (!json_is_string(v))
            return invalid(field, fieldlen, "config." ENDPOINT_FIELD, err, errlen,
                           "must be a string (a base URL)");
        if (casb_endpoint_allowed(json_string_value(v), provider->default_api_base_url,
                                  allowed_endpoints ? allowed_endpoints : "", reason,
                                  sizeof(reason)) != 1)
            return invalid(field, fieldlen, "config." ENDPOINT_FIELD, err, errlen, reason);
    }
    return 0;
}

int im_validate_create(im_create_request *out, const json_t *body,
                       const casb_provider *const *providers, const char *allowed_endpoints,
                       char *field, size_t fieldlen, char *err, size_t errlen)
{
    const json_t *v = NULL;

    memset(out, 0, sizeof(*out));
    if (fieldlen)
        field[0] = '\0';
    if (!json_is_object(body))
        return invalid(field, fieldlen, "body", err, errlen, "must be a JSON object");

    v = json_object_get(body, "provider");
    if (!json_is_string(v))
        return invalid(field, fieldlen, "provider", err, errlen, "is required (a string)");
    out->provider = provider_lookup(providers, json_string_value(v));
    if (!out->provider)
        return invalid(field, fieldlen, "provider", err, errlen, "unknown provider");

    if (check_name(json_object_get(body, "name"), &out->name, field, fieldlen, err, errlen) != 0)
        return CASB_EINVALID;
    if (check_object(json_object_get(body, "config"), "config", &out->config, field, fieldlen,
                     err, errlen) != 0)
        return CASB_EINVALID;
    if (check_credentials(json_object_get(body, "credentials"), &out->credentials, field,
                          fieldlen, err, errlen) != 0)
        return CASB_EINVALID;

    v = json_object_get(body, "scan_interval_s");
    if (!v || json_is_null(v)) {
        out->scan_interval_s = out->provider->default_scan_interval_s;
        if (out->scan_interval_s < IM_SCAN_INTERVAL_MIN_S ||
            out->scan_interval_s > IM_SCAN_INTERVAL_MAX_S)
            out->scan_interval_s = IM_SCAN_INTERVAL_MAX_S;
    } else if (check_interval(v, &out->scan_interval_s, field, fieldlen, err, errlen) != 0) {
        return CASB_EINVALID;
    }

    return im_validate_settings(out->provider, out->config, out->credentials,
                                allowed_endpoints, field, fieldlen, err, errlen);
}

/* body is an object whose members are all in allowed (NULL-terminated). */
static int only_members(const json_t *body, const char *const *allowed, char *field,
                        size_t fieldlen, char *err, size_t errlen)
{
    const char *key = NULL;
    json_t *v = NULL;
    char name[128];

    if (fieldlen)
        field[0] = '\0';
    if (!json_is_object(body))
        return invalid(field, fieldlen, "body", err, errlen, "must be a JSON object");
    json_object_foreach((json_t *)body, key, v) {
        int known = 0;

        for (size_t i = 0; allowed[i]; i++) {
            if (strcmp(allowed[i], key) == 0)
                known = 1;
        }
        if (!known) {
            snprintf(name, sizeof(name), "%.*s", casb_utf8_prefix_len(key, 100), key);
            return invalid(field, fieldlen, name, err, errlen, "unknown field");
        }
    }
    return 0;
}

/* The members of a change body, each checked when present. allowed is a NULL-terminated
 * list of the members this body may carry. */
static int read_change(im_update_request *out, const json_t *body, const char *const *allowed,
                       char *field, size_t fieldlen, char *err, size_t errlen)
{
    const char *key = NULL;
    json_t *v = NULL;

    memset(out, 0, sizeof(*out));
    if (only_members(body, allowed, field, fieldlen, err, errlen) != 0)
        return CASB_EINVALID;
    json_object_foreach((json_t *)body, key, v) {
        int rc = 0;

        if (strcmp(key, "name") == 0)
            rc = check_name(v, &out->name, field, fieldlen, err, errlen);
        else if (strcmp(key, "scan_interval_s") == 0)
            rc = check_interval(v, &out->scan_interval_s, field, fieldlen, err, errlen);
        else if (strcmp(key, "config") == 0)
            rc = check_object(v, "config", &out->config, field, fieldlen, err, errlen);
        else if (strcmp(key, "credentials") == 0)
            rc = check_credentials(v, &out->credentials, field, fieldlen, err, errlen);
        if (rc != 0)
            return CASB_EINVALID;
    }
    return 0;
}

int im_validate_update(im_update_request *out, const json_t *body, char *field,
                       size_t fieldlen, char *err, size_t errlen)
{
    static const char *const allowed[] = {"name", "scan_interval_s", "config", "credentials",
                                          NULL};

    if (read_change(out, body, allowed, field, fieldlen, err, errlen) != 0)
        return CASB_EINVALID;
    if (json_object_size(body) == 0)
        return invalid(field, fieldlen, "body", err, errlen,
                       "nothing to change (name, scan_interval_s, config, credentials)");
    return 0;
}

int im_validate_reauthorize(im_update_request *out, const json_t *body, char *field,
                            size_t fieldlen, char *err, size_t errlen)
{
    static const char *const allowed[] = {"credentials", "config", NULL};

    return read_change(out, body, allowed, field, fieldlen, err, errlen);
}

int im_validate_oauth_start(im_create_request *out, int *install, const json_t *body,
                            const casb_provider *provider, const char *allowed_endpoints,
                            char *field, size_t fieldlen, char *err, size_t errlen)
{
    static const char *const allowed[] = {"name", "config", "scan_interval_s", "install", NULL};
    const json_t *v;
    /* The shape the callback will store, so that the provider judges the config as it will
     * be used; its token is never sent anywhere. */
    json_t *placeholder = json_pack("{s:b, s:s}", "oauth", 1, "access_token", "pending");
    im_update_request change;
    int rc;

    memset(out, 0, sizeof(*out));
    if (!placeholder)
        return casb_fail(err, errlen, CASB_ERROR, "out of memory");
    *install = 0;
    rc = read_change(&change, body, allowed, field, fieldlen, err, errlen);
    v = json_object_get(body, "install");
    if (rc == 0 && v && !json_is_boolean(v))
        rc = invalid(field, fieldlen, "install", err, errlen, "must be true or false");
    if (rc == 0 && json_is_true(v))
        *install = 1;
    if (rc == 0 && !change.name)
        rc = invalid(field, fieldlen, "name", err, errlen, "is required (a string)");
    if (rc == 0 && !change.config)
        rc = invalid(field, fieldlen, "config", err, errlen, "is required (an object)");
    if (rc == 0)
        rc = im_validate_settings(provider, change.config, placeholder, allowed_endpoints, field,
                                  fieldlen, err, errlen);
    json_decref(placeholder);
    if (rc != 0)
        return CASB_EINVALID;
    out->provider = provider;
    out->name = change.name;
    out->config = change.config;
    out->scan_interval_s = change.scan_interval_s;
    if (!out->scan_interval_s)
        out->scan_interval_s = provider->default_scan_interval_s;
    return 0;
}

int im_validate_token(casb_token_spec *out, const json_t *body, char *field, size_t fieldlen,
                      char *err, size_t errlen)
{
    static const char *const allowed[] = {"name", "role", "expires_at", NULL};
    const json_t *expires;

    memset(out, 0, sizeof(*out));
    if (only_members(body, allowed, field, fieldlen, err, errlen) != 0)
        return CASB_EINVALID;
    out->name = casb_json_str(body, "name");
    if (!out->name)
        return invalid(field, fieldlen, "name", err, errlen, "required, a string");
    if (!casb_json_str(body, "role") ||
        casb_role_parse(casb_json_str(body, "role"), &out->role) != 0)
        return invalid(field, fieldlen, "role", err, errlen,
                       "required, one of admin, analyst, read_only");
    expires = json_object_get(body, "expires_at");
    if (expires && !json_is_null(expires)) {
        out->expires_at = json_string_value(expires);
        if (!out->expires_at)
            return invalid(field, fieldlen, "expires_at", err, errlen,
                           "an RFC 3339 date-time or null");
    }
    return 0;
}
