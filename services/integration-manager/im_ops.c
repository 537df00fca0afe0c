#include "im_ops.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "casb/error.h"
#include "casb/json.h"
#include "casb/kafka.h"
#include "casb/log.h"
#include "casb/service.h"
#include "im_settings.h"

/* The summary goes to stdout as one line, after the logs (stderr) of the work. */
static void print_line(const char *line)
{
    printf("%s\n", line);
    fflush(stdout);
}

int im_migrate_main(int argc, char **argv)
{
    im_migrate_settings settings;
    char err[512] = "";
    char line[32];
    int applied = 0;

    im_migrate_settings_load_or_exit(&settings, argc, argv);
    casb_log_init("integration-manager", settings.log_level);
    if (casb_service_migrate_count(settings.database_url, &applied, err, sizeof(err)) != 0) {
        casb_log_error("migrations failed", "error", err);
        return 1;
    }
    snprintf(line, sizeof(line), "{\"applied\": %d}", applied);
    print_line(line);
    return 0;
}

char *im_topics_summary(const int *outcome)
{
    json_t *created = json_array(), *existing = json_array();
    json_t *root = json_object();
    char *out = NULL;

    if (!created || !existing || !root)
        goto out;
    for (size_t i = 0; i < casb_kafka_topics_count; i++) {
        json_t *into = outcome[i] == CASB_KAFKA_TOPIC_CREATED ? created : existing;

        if (json_array_append_new(into, json_string(casb_kafka_topics[i].name)) != 0)
            goto out;
    }
    if (json_object_set(root, "created", created) != 0 ||
        json_object_set(root, "existing", existing) != 0)
        goto out;
    out = casb_json_dump(root);
out:
    json_decref(created);
    json_decref(existing);
    json_decref(root);
    return out;
}

int im_topics_main(int argc, char **argv)
{
    im_topics_settings settings;
    int *outcome = NULL;
    char err[512] = "";
    char *summary = NULL;
    int status = 1;
    int rc;

    im_topics_settings_load_or_exit(&settings, argc, argv);
    casb_log_init("integration-manager", settings.log_level);
    outcome = calloc(casb_kafka_topics_count, sizeof(*outcome));
    if (!outcome) {
        casb_log_error("creating the topics: out of memory");
        return 1;
    }
    rc = casb_kafka_topics_create(settings.kafka_brokers, (int)settings.replication_factor,
                                  IM_TOPICS_TIMEOUT_MS, outcome, err, sizeof(err));
    if (rc == CASB_EINVALID) {
        fprintf(stderr, "casb-integration-manager %s: %s\n", IM_TOPICS_COMMAND, err);
        status = CASB_SERVICE_EXIT_CONFIG;
        goto out;
    }
    if (rc != 0) {
        casb_log_error("creating the topics failed", "error", err);
        goto out;
    }
    summary = im_topics_summary(outcome);
    if (!summary) {
        casb_log_error("creating the topics: out of memory");
        goto out;
    }
    print_line(summary);
    status = 0;
out:
    free(summary);
    free(outcome);
    return status;
}
