/* The DNS answers of the Google provider's mail checks: casb_dns_txt_parse (a resolver's
 * answer message, as res_nquery returns it) and the SPF and DMARC evaluation of the TXT
 * strings it yields (casb_spf_eval, casb_dmarc_eval). Invariants: at most 64 strings, each
 * printable ASCII; the results are bounded C strings with values from their sets. */
#include <string.h>

#include "casb/dns.h"
#include "casb/error.h"
#include "casb/mailauth.h"
#include "fuzz_common.h"

static int printable(const char *s)
{
    for (; *s; s++) {
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            return 0;
    }
    return 1;
}

static void check_spf(const json_t *txts)
{
    casb_spf_result r;

    casb_spf_eval(txts, &r);
    FUZZ_CHECK(memchr(r.record, '\0', sizeof(r.record)) && memchr(r.problem, '\0', sizeof(r.problem)));
    FUZZ_CHECK(r.all_qualifier == 0 || strchr("+-~?", r.all_qualifier));
    FUZZ_CHECK(!(r.present && r.multiple));
    FUZZ_CHECK(r.present || r.problem[0]);
}

static void check_dmarc(const json_t *txts)
{
    casb_dmarc_result r;

    casb_dmarc_eval(txts, &r);
    FUZZ_CHECK(memchr(r.record, '\0', sizeof(r.record)) && memchr(r.problem, '\0', sizeof(r.problem)));
    FUZZ_CHECK(r.pct >= 0 && r.pct <= 100);
    FUZZ_CHECK(!(r.present && r.multiple));
    if (r.present) {
        FUZZ_CHECK(!strcmp(r.p, "none") || !strcmp(r.p, "quarantine") || !strcmp(r.p, "reject"));
        FUZZ_CHECK(!strcmp(r.sp, "none") || !strcmp(r.sp, "quarantine") || !strcmp(r.sp, "reject"));
    } else {
        FUZZ_CHECK(r.problem[0]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[256] = "";
    json_t *txts = NULL, *s;
    size_t i;
    int rc = casb_dns_txt_parse(data, size, "example.com", &txts, err, sizeof(err));

    if (rc != 0) {
        FUZZ_CHECK(rc == CASB_EUNAVAILABLE && err[0] && !txts);
        return 0;
    }
    FUZZ_CHECK(json_is_array(txts) && json_array_size(txts) <= 64);
    json_array_foreach(txts, i, s) {
        FUZZ_CHECK(json_is_string(s) && printable(json_string_value(s)));
    }
    check_spf(txts);
    check_dmarc(txts);
    json_decref(txts);
    return 0;
}
