/* A migrated schema of its own in the test PostgreSQL (CASB_TEST_DATABASE_URL, which
 * tests/run exports), for unit tests of the services' SQL: each test program sees exactly the
 * rows it inserts, and drops its schema at the end. Header-only, included by test programs
 * after cmocka.h. */
#ifndef CASB_TEST_SCHEMA_H
#define CASB_TEST_SCHEMA_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "casb/db.h"
#include "casb/migrate.h"

/* Runs one statement that needs the schema's name as an identifier: a name cannot be a
 * parameter, so it goes through a setting and format('%I'). */
static void test_schema_exec(casb_db *conn, const char *schema, const char *statement_format)
{
    char err[256] = "";
    const char *params[] = {schema, statement_format};

    if (casb_db_exec(conn,
                     "SELECT set_config('casb.test_schema', $1, false),"
                     " set_config('casb.test_statement', $2, false)",
                     2, params, NULL, err, sizeof(err)) != 0 ||
        casb_db_exec(conn,
                     "DO $$ BEGIN EXECUTE format(current_setting('casb.test_statement'),"
                     " current_setting('casb.test_schema')); END $$",
                     0, NULL, NULL, err, sizeof(err)) != 0)
        fail_msg("%s on %s: %s", statement_format, schema, err);
}

/* The test database's URL with schema as the search path, for more connections to it. */
static void test_schema_url(const char *schema, char *out, size_t outlen)
{
    const char *url = getenv("CASB_TEST_DATABASE_URL");

    snprintf(out, outlen, "%s%coptions=-csearch_path%%3D%s", url, strchr(url, '?') ? '&' : '?',
             schema);
}

/* Creates schema "<prefix>_<pid>" (schema receives it), migrates it and opens *db on it:
 * every connection (and reconnection) of the test works in the schema. */
static void test_schema_open(casb_db **db, const char *prefix, char schema[64])
{
    const char *url = getenv("CASB_TEST_DATABASE_URL");
    char err[256] = "", schema_url[1024];
    casb_db *plain = NULL;

    if (!url || !*url)
        fail_msg("CASB_TEST_DATABASE_URL is not set: these tests need a real PostgreSQL "
                 "(tests/run exports it)");
    snprintf(schema, 64, "%s_%ld", prefix, (long)getpid());
    if (casb_db_open(&plain, url, 5000, err, sizeof(err)) != 0)
        fail_msg("casb_db_open: %s", err);
    test_schema_exec(plain, schema, "DROP SCHEMA IF EXISTS %I CASCADE");
    test_schema_exec(plain, schema, "CREATE SCHEMA %I");
    casb_db_close(plain);
    test_schema_url(schema, schema_url, sizeof(schema_url));
    if (casb_db_open(db, schema_url, 5000, err, sizeof(err)) != 0)
        fail_msg("casb_db_open (schema %s): %s", schema, err);
    if (casb_migrate(*db, casb_migrations, casb_migrations_count, NULL, err, sizeof(err)) != 0)
        fail_msg("casb_migrate: %s", err);
}

/* Drops the schema and closes db (NULL-safe). */
static void test_schema_close(casb_db *db, const char *schema)
{
    if (!db)
        return;
    test_schema_exec(db, schema, "DROP SCHEMA %I CASCADE");
    casb_db_close(db);
}

#endif
