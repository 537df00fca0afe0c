#ifndef CASB_MIGRATE_H
#define CASB_MIGRATE_H

#include <stddef.h>

#include "casb/db.h"

/* Schema migrations from proto/migrations/NNNN_name.sql, embedded into libcommon at build
 * time (generated migrations_embedded.c) so a deployed binary needs no files. Applied in
 * order of their number, each in its own transaction, recorded in schema_migrations, all
 * under a session advisory lock so that replicas starting together apply each once. */
typedef struct {
    int version;
    const char *name;
    const char *sql;
} casb_migration;

extern const casb_migration casb_migrations[];
extern const size_t casb_migrations_count;

/* Applies what is missing. *applied (optional) receives how many ran. */
int casb_migrate(casb_db *db, const casb_migration *list, size_t n, int *applied,
                 char *err, size_t errlen);

#endif
