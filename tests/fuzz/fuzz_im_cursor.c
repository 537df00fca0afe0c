/* integration-manager's paging: the cursor tokens clients hand back (im_cursor_decode,
 * im_cursor_decode_seq) and the limit (im_page_parse). The input is "<limit>\n<cursor>".
 * Invariants: an accepted cursor re-encodes to a token that decodes to the same cursor;
 * a refused one leaves nothing; an accepted limit is within 1..CASB_QUERY_LIMIT_MAX. */
#include <string.h>

#include "casb/crypto.h"
#include "casb/error.h"
#include "casb/query.h"
#include "fuzz_common.h"
#include "im_cursor.h"

static void check_cursor(const char *token)
{
    im_cursor c, again;
    char *re;

    if (im_cursor_decode(token, &c) != 0) {
        FUZZ_CHECK(c.at[0] == '\0' && c.id[0] == '\0');
        return;
    }
    FUZZ_CHECK(casb_uuid_valid(c.id) && strlen(c.at) == 27);
    re = im_cursor_encode(c.at, c.id);
    FUZZ_CHECK(re != NULL);
    FUZZ_CHECK(im_cursor_decode(re, &again) == 0);
    FUZZ_CHECK(memcmp(&c, &again, sizeof(c)) == 0);
    free(re);
}

static void check_seq(const char *token)
{
    long long id, again;
    char *re;

    if (im_cursor_decode_seq(token, &id) != 0) {
        FUZZ_CHECK(id == 0);
        return;
    }
    FUZZ_CHECK(id > 0);
    re = im_cursor_encode_seq(id);
    FUZZ_CHECK(re != NULL);
    FUZZ_CHECK(im_cursor_decode_seq(re, &again) == 0 && again == id);
    free(re);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *input = fuzz_cstr(data, size);
    char *nl = strchr(input, '\n');
    const char *limit = input, *cursor = nl ? nl + 1 : NULL, *param;
    char err[256];
    im_page page;
    im_seq_page seq;

    if (nl)
        *nl = '\0';
    if (!limit[0])
        limit = NULL;
    check_cursor(cursor ? cursor : input);
    check_seq(cursor ? cursor : input);
    if (im_page_parse(&page, limit, cursor, &param, err, sizeof(err)) == 0)
        FUZZ_CHECK(page.limit >= 1 && page.limit <= CASB_QUERY_LIMIT_MAX &&
                   page.has_cursor == (cursor != NULL));
    else
        FUZZ_CHECK(param && (!strcmp(param, "limit") || !strcmp(param, "cursor")));
    if (im_seq_page_parse(&seq, limit, cursor, &param, err, sizeof(err)) == 0)
        FUZZ_CHECK(seq.limit >= 1 && seq.limit <= CASB_QUERY_LIMIT_MAX &&
                   (!seq.has_cursor || seq.before_id > 0));
    free(input);
    return 0;
}
