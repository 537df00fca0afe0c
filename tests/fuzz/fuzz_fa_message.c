/* findings-api's decoder of casb.scan.results messages (fa_message_parse, with the shipped
 * finding catalogue), and the rows the ingest builds from a valid one. Invariants: a refused
 * message leaves nothing behind and says why; an accepted one has in-range fields, one
 * instance row per finding, and is accepted again, the same, after re-encoding. */
#include <string.h>

#include "casb/crypto.h"
#include "casb/error.h"
#include "casb/json.h"
#include "fa_catalogue.h"
#include "fa_message.h"
#include "fuzz_common.h"

/* The text rows(one) makes, parsed: it must be JSON. */
static json_t *rows_of(int (*rows)(const fa_result_msg *const *, size_t, casb_text *),
                       const fa_result_msg *m)
{
    const fa_result_msg *one[] = {m};
    casb_text t = {0};
    char err[128];
    json_t *v;

    FUZZ_CHECK(rows(one, 1, &t) == 0);
    v = casb_json_parse(t.data, t.len, 0, err, sizeof(err));
    FUZZ_CHECK(json_is_array(v));
    casb_text_free(&t);
    return v;
}

static void check_rows(const fa_result_msg *m)
{
    json_t *types = rows_of(fa_message_type_rows, m);
    json_t *instances = rows_of(fa_message_instance_rows, m);

    FUZZ_CHECK(json_array_size(instances) == json_array_size(m->findings));
    FUZZ_CHECK(json_array_size(types) <= json_array_size(m->findings));
    FUZZ_CHECK(json_array_size(types) == m->ntypes);
    /* Each row carries its finding's values, whatever their characters. */
    for (size_t i = 0; i < json_array_size(instances); i++) {
        const json_t *row = json_array_get(instances, i);
        const json_t *asset = json_object_get(json_array_get(m->findings, i), "asset");

        FUZZ_CHECK(json_equal(json_object_get(row, "asset_id"), json_object_get(asset, "id")));
        FUZZ_CHECK(casb_json_int(row, "ord", -1) == (long long)i);
    }
    json_decref(types);
    json_decref(instances);
}

/* Re-encodes the accepted message and decodes it again: the same message. */
static void check_round_trip(const fa_result_msg *m, const fa_catalogue *cat)
{
    char reason[256];
    fa_result_msg again;
    char *text = casb_json_dump(m->root);

    FUZZ_CHECK(text != NULL);
    FUZZ_CHECK(fa_message_parse(&again, text, strlen(text), cat, reason, sizeof(reason)) == 0);
    FUZZ_CHECK(again.kind == m->kind && again.seq == m->seq && again.attempt == m->attempt);
    FUZZ_CHECK(strcmp(again.scan_id, m->scan_id) == 0);
    FUZZ_CHECK(json_array_size(again.findings) == json_array_size(m->findings));
    fa_message_clear(&again);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const fa_catalogue *cat = fuzz_catalogue();
    char reason[256] = "";
    fa_result_msg m;
    int rc = fa_message_parse(&m, (const char *)data, size, cat, reason, sizeof(reason));

    if (rc != 0) {
        FUZZ_CHECK(rc == CASB_EINVALID);
        FUZZ_CHECK(reason[0] != '\0');
        FUZZ_CHECK(m.root == NULL);
        return 0;
    }
    FUZZ_CHECK(casb_uuid_valid(m.scan_id) && casb_uuid_valid(m.integration_id) &&
               casb_uuid_valid(m.account_id));
    FUZZ_CHECK(m.seq >= 1 && m.attempt >= 1);
    FUZZ_CHECK(fa_rfc3339_valid(m.scan_started_at));
    FUZZ_CHECK(m.kind != FA_KIND_FINDINGS ||
               json_array_size(m.findings) <= FA_MAX_FINDINGS_PER_MESSAGE);
    FUZZ_CHECK(m.kind != FA_KIND_FAILED || (m.error && m.error_kind));
    if (m.kind == FA_KIND_FINDINGS)
        check_rows(&m);
    check_round_trip(&m, cat);
    fa_message_clear(&m);
    return 0;
}
