/* A blocking HTTP client for tests that talk to a real server in the same process (the
 * simulator, a fake provider): one libcurl request, the whole answer in memory. Header-only,
 * included by test programs after cmocka.h. */
#ifndef CASB_TEST_HTTP_UTIL_H
#define CASB_TEST_HTTP_UTIL_H

#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "casb/json.h"

typedef struct {
    long status;
    char *body;
    size_t body_len;
    char *headers;
    size_t headers_len;
} response;

static inline size_t collect(char *data, size_t size, size_t n, void *userp)
{
    char **buf = userp;
    size_t *len = (size_t *)(buf + 1);
    size_t add = size * n;
    char *grown = realloc(*buf, *len + add + 1);

    if (!grown)
        return 0;
    memcpy(grown + *len, data, add);
    *len += add;
    grown[*len] = '\0';
    *buf = grown;
    return add;
}

static inline void response_free(response *r)
{
    free(r->body);
    free(r->headers);
    memset(r, 0, sizeof *r);
}

/* One request to url. hdrs: whole header lines, NULL-terminated (may be NULL). Redirects are
 * not followed. Fails the test when no answer comes. */
static inline response http_request(const char *method, const char *url,
                                    const char *const *hdrs,
                                    const char *body)
{
    response r = {0};
    struct {
        char *buf;
        size_t len;
    } b = {0}, h = {0};
    struct curl_slist *list = NULL;
    CURL *c = curl_easy_init();

    assert_non_null(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 20000L);
    for (size_t i = 0; hdrs && hdrs[i]; i++)
        list = curl_slist_append(list, hdrs[i]);
    if (body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_slist_free_all(list);
    curl_easy_cleanup(c);
    r.body = b.buf ? b.buf : strdup("");
    r.body_len = b.len;
    r.headers = h.buf ? h.buf : strdup("");
    r.headers_len = h.len;
    return r;
}

/* The value of a response header (case-insensitive name) into buf; 0 when absent. */
static inline int header(const response *r, const char *name, char *buf, size_t len)
{
    size_t n = strlen(name);

    for (const char *line = r->headers; line && *line;) {
        const char *eol = strstr(line, "\r\n");
        size_t ll = eol ? (size_t)(eol - line) : strlen(line);
        if (ll > n && strncasecmp(line, name, n) == 0 && line[n] == ':') {
            const char *v = line + n + 1;
            while (*v == ' ')
                v++;
            snprintf(buf, len, "%.*s", (int)(ll - (size_t)(v - line)), v);
            return 1;
        }
        line = eol ? eol + 2 : NULL;
    }
    return 0;
}

/* The body as JSON (new reference); fails the test when it is not JSON. */
static inline json_t *body_of(const response *r)
{
    json_t *v = casb_json_parse(r->body, r->body_len, 0, NULL, 0);

    assert_non_null(v);
    return v;
}

/* A loopback port free right now (the kernel's pick), or -1. */
static inline int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int port;

    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0)
        return -1;
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

#endif
