/* What the HTTP client reads from a provider's response headers: the header lookup
 * (casb_http_response_header), the Link rel="next" pagination URL (casb_http_link_rel, as
 * the GitHub client uses it) and the rate-limit wait (casb_http_retry_after_s). The input
 * is a raw header block. Invariants: a value found fits its buffer, is a part of the input
 * and holds no line break; a next URL ends at its '>'; a wait is never below -1. */
#include <string.h>

#include "casb/http_client.h"
#include "fuzz_common.h"

static void check_link(const char *input, const char *value)
{
    char url[2048];
    int rc = casb_http_link_rel(value, "next", url, sizeof(url));

    FUZZ_CHECK(rc >= -1 && rc <= 1);
    if (rc != 1)
        return;
    FUZZ_CHECK(strlen(url) < sizeof(url));
    FUZZ_CHECK(!strchr(url, '>'));
    FUZZ_CHECK(strstr(input, url) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"link", "retry-after", "x-ratelimit-remaining",
                                        "x-ratelimit-reset", "content-type", NULL};
    char *input = fuzz_cstr(data, size);
    casb_http_response r = {.status = 200, .headers = input};
    char value[512];

    for (int i = 0; names[i]; i++) {
        int rc = casb_http_response_header(&r, names[i], value, sizeof(value));
        FUZZ_CHECK(rc >= -1 && rc <= 1);
        if (rc == 1) {
            FUZZ_CHECK(strlen(value) < sizeof(value));
            FUZZ_CHECK(!strchr(value, '\r') && !strchr(value, '\n'));
            FUZZ_CHECK(strstr(input, value) != NULL);
        }
    }
    if (casb_http_response_header(&r, "link", value, sizeof(value)) == 1)
        check_link(input, value);
    /* A caller may also hand the whole value of a long header. */
    check_link(input, input);
    FUZZ_CHECK(casb_http_retry_after_s(&r, 1764000000L) >= -1);
    free(input);
    return 0;
}
