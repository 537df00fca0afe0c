#ifndef IM_OPS_H
#define IM_OPS_H

/* The deployment subcommands of casb-integration-manager, run once before the services (an
 * init container, a Kubernetes Job): `migrate` brings the schema up to date and
 * `create-topics` creates the Kafka topics of casb_kafka_topics. Each prints one JSON line
 * on stdout and exits: 0 done, 1 the database or the brokers failed, 2 a bad configuration. */

#define IM_MIGRATE_COMMAND "migrate"
#define IM_TOPICS_COMMAND "create-topics"
/* How long create-topics waits for the brokers' answer. */
#define IM_TOPICS_TIMEOUT_MS 30000

/* The summary line of create-topics, {"created":[...],"existing":[...]} in the order of
 * casb_kafka_topics, from the outcome casb_kafka_topics_create filled. malloc'ed; NULL when
 * out of memory. */
char *im_topics_summary(const int *outcome);

/* argv[0] is the subcommand. Return the process exit status. */
int im_migrate_main(int argc, char **argv);
int im_topics_main(int argc, char **argv);

#endif
