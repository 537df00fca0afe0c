/* Reading a result's values, in the text format or PostgreSQL's binary formats
 * (casb_db_query_binary): each accessor looks at the column's format and type, so a caller
 * reads a uuid, a number, a boolean or a time the same way from either. */
#include "casb/db.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "casb/log.h"

/* The types read in binary here (pg_type.oid; fixed since PostgreSQL 7.x). */
enum {
    OID_BOOL = 16,
    OID_INT8 = 20,
    OID_INT2 = 21,
    OID_INT4 = 23,
    OID_UUID = 2950,
    OID_TIMESTAMPTZ = 1184,
};

/* Seconds from 1970-01-01 to 2000-01-01, PostgreSQL's epoch for binary times. */
#define PG_EPOCH_UNIX_S 946684800LL
#define US_PER_S 1000000LL

/* Returns the column index, or -1 (logged: a wrong name is a programming error). */
static int column_index(const PGresult *res, int row, const char *column)
{
    int col;

    if (!res || row < 0 || row >= PQntuples(res))
        return -1;
    col = PQfnumber(res, column);
    if (col < 0)
        casb_log_error("database: no such column in result", "column", column);
    return col;
}

/* Network order, as PostgreSQL sends numbers. */
static int64_t big_endian(const unsigned char *p, int size)
{
    uint64_t v = 0;

    for (int i = 0; i < size; i++)
        v = (v << 8) | p[i];
    if (size < 8 && (v >> (size * 8 - 1)) & 1) /* sign-extend int2 and int4 */
        v |= ~(uint64_t)0 << (size * 8);
    return (int64_t)v;
}

static int text_int(const char *s, long long *out)
{
    char *end = NULL;
    long long v;

    if (!*s)
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

/* Rounds toward the past, as the seconds of a time are counted (-0.5 s is 1969-12-31
 * 23:59:59). */
static long long floor_div(long long a, long long b)
{
    return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

casb_db_format casb_db_column_format(const PGresult *res, int col)
{
    casb_db_format f = {0, 0};

    if (res && col >= 0 && col < PQnfields(res)) {
        f.binary = PQfformat(res, col) == 1;
        f.type = PQftype(res, col);
    }
    return f;
}

int casb_db_decode_int(casb_db_format f, const char *v, int len, long long *out)
{
    int size;

    if (!v)
        return -1;
    if (!f.binary)
        return text_int(v, out);
    switch (f.type) {
    case OID_INT2: size = 2; break;
    case OID_INT4: size = 4; break;
    case OID_INT8: size = 8; break;
    default: return -1;
    }
    if (len != size)
        return -1;
    *out = (long long)big_endian((const unsigned char *)v, size);
    return 0;
}

int casb_db_decode_bool(casb_db_format f, const char *v, int len)
{
    if (!v)
        return 0;
    if (!f.binary)
        return v[0] == 't';
    return f.type == OID_BOOL && len == 1 && v[0] != 0;
}

const char *casb_db_decode_uuid(casb_db_format f, const char *v, int len, char out[37])
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)v;
    char *o = out;

    if (!v)
        return NULL;
    if (!f.binary) {
        snprintf(out, 37, "%s", v);
        return out;
    }
    if (f.type != OID_UUID || len != 16)
        return NULL;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = hex[p[i] >> 4];
        *o++ = hex[p[i] & 15];
    }
    *o = '\0';
    return out;
}

int casb_db_decode_time(casb_db_format f, const char *v, int len, long long *unix_s)
{
    int64_t us;

    if (!v)
        return -1;
    if (!f.binary || f.type != OID_TIMESTAMPTZ)
        return casb_db_decode_int(f, v, len, unix_s);
    if (len != 8)
        return -1;
    us = big_endian((const unsigned char *)v, 8);
    if (us == INT64_MAX || us == INT64_MIN) /* 'infinity', '-infinity' */
        return -1;
    *unix_s = floor_div(us, US_PER_S) + PG_EPOCH_UNIX_S;
    return 0;
}

/* The value of column in row and its length: NULL for SQL NULL or no such column or row.
 * *col is the column's number (-1 for none), for its format. */
static const char *value_of(const PGresult *res, int row, const char *column, int *col,
                            int *len)
{
    *col = column_index(res, row, column);
    *len = 0;
    if (*col < 0 || PQgetisnull(res, row, *col))
        return NULL;
    *len = PQgetlength(res, row, *col);
    return PQgetvalue(res, row, *col);
}

const char *casb_db_get(const PGresult *res, int row, const char *column)
{
    int col, len;

    return value_of(res, row, column, &col, &len);
}

long long casb_db_get_int(const PGresult *res, int row, const char *column, long long def)
{
    int col, len;
    const char *v = value_of(res, row, column, &col, &len);
    long long n;

    return casb_db_decode_int(casb_db_column_format(res, col), v, len, &n) == 0 ? n : def;
}

int casb_db_get_bool(const PGresult *res, int row, const char *column)
{
    int col, len;
    const char *v = value_of(res, row, column, &col, &len);

    return casb_db_decode_bool(casb_db_column_format(res, col), v, len);
}

const char *casb_db_get_uuid(const PGresult *res, int row, const char *column, char out[37])
{
    int col, len;
    const char *v = value_of(res, row, column, &col, &len);

    return casb_db_decode_uuid(casb_db_column_format(res, col), v, len, out);
}

int casb_db_get_time(const PGresult *res, int row, const char *column, long long *unix_s)
{
    int col, len;
    const char *v = value_of(res, row, column, &col, &len);

    return casb_db_decode_time(casb_db_column_format(res, col), v, len, unix_s);
}
