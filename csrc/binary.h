/* PostgreSQL's binary wire format for the types the core decodes without
 * text: which types qualify, and reading their values into exactly what the
 * server's text output gives. Pure C, no Lua, no libpq. */
#ifndef CRPG_BINARY_H
#define CRPG_BINARY_H

#include <stddef.h>

/* What a result column of type oid needs to travel in binary and decode to
 * exactly the value its text form gives:
 *   BINARY_NO        never (text);
 *   BINARY_YES       always: bool, bytea, name, int8, int2, int4, text, oid,
 *                    json, float4, float8, bpchar, varchar, uuid, jsonb,
 *                    numeric, and arrays of these;
 *   BINARY_ISO       when DateStyle is ISO: date, timestamp (and arrays);
 *   BINARY_FIXED_TZ  when DateStyle is ISO and TimeZone a fixed offset
 *                    (binary_tz_offset): timestamptz (and arrays).
 * The levels are ordered: a statement needs the highest of its columns'. */
enum { BINARY_NO = 0, BINARY_YES = 1, BINARY_ISO = 2, BINARY_FIXED_TZ = 3 };
int binary_eligible(unsigned int oid);

/* The element type of a built-in array type binary_eligible accepts, else 0. */
unsigned int binary_array_elem(unsigned int oid);

/* 1 when a statement that needs level (BINARY_*) may come in binary under the
 * session's ParameterStatus values DateStyle, TimeZone and integer_datetimes
 * (any may be NULL: unknown, which allows only BINARY_YES). */
int binary_session_allows(int level, const char *datestyle, const char *timezone,
                          const char *integer_datetimes);

/* The offset east of UTC, in seconds, of a TimeZone setting the server
 * applies without a time zone database rule: UTC and its aliases, Etc/GMT+-N,
 * and POSIX specs without daylight saving ("<+05:30>-05:30", "UTC+3").
 * 0, or -1 (the offset depends on the date, or the name is not known). */
int binary_tz_offset(const char *tz, long *east);

/* A signed integer of 2, 4 or 8 bytes, or an unsigned one of 4 (oid, when
 * is_unsigned), in network byte order. 0, or -1 for another length. */
int binary_int(const char *v, size_t len, int is_unsigned, long long *out);

/* An IEEE 754 double of 8 bytes in network byte order. 0, or -1. */
int binary_float8(const char *v, size_t len, double *out);

/* A float4 of 4 bytes as the double that strtod gives of the server's text
 * (the shortest decimal that reads back as the same float, as PostgreSQL 12
 * and later print it at the default extra_float_digits). 0, or -1. */
int binary_float4(const char *v, size_t len, double *out);

/* A uuid of 16 bytes as the server prints it: lowercase hex with dashes
 * (36 characters, no NUL written). 0, or -1 for another length. */
int binary_uuid(const char *v, size_t len, char out[36]);

/* A numeric as the server prints it ("-12.340", "NaN", "Infinity"): writes at
 * most cap bytes (no NUL) and sets *outlen to the length of the whole text.
 * 0 when it fit, 1 when cap was too small (nothing useful written: call
 * again with *outlen bytes), -1 when the bytes are not a numeric. */
int binary_numeric(const char *v, size_t len, char *out, size_t cap, size_t *outlen);

/* The longest text binary_date and binary_timestamp write. */
#define BINARY_TIME_MAX 48

/* A date as the server prints it with DateStyle ISO ("2024-01-02",
 * "0044-03-15 BC", "infinity"). 0, or -1. */
int binary_date(const char *v, size_t len, char out[BINARY_TIME_MAX], size_t *outlen);

/* A timestamp (with_tz 0) or timestamptz (with_tz 1, shown at east seconds
 * east of UTC) as the server prints it with DateStyle ISO
 * ("2024-01-02 03:04:05.12+00", "0044-03-15 12:00:00 BC", "-infinity").
 * 0, or -1. */
int binary_timestamp(const char *v, size_t len, int with_tz, long east, char out[BINARY_TIME_MAX],
                     size_t *outlen);

/* A binary array: read the header with binary_array_open, then each of the
 * count elements (row-major, dims[0] outermost) with binary_array_next. */
#define BINARY_ARRAY_MAXDIM 6
typedef struct binary_array {
  int ndim;
  unsigned int elem;                  /* the element type */
  int dims[BINARY_ARRAY_MAXDIM];
  long count;                         /* elements in all: the product of dims */
  const char *p, *end;                /* the elements not read yet */
} binary_array;

/* 0, or -1 when the header is malformed or the element count does not fit
 * the bytes (each element takes at least 4). */
int binary_array_open(const char *v, size_t len, binary_array *a);

/* The next element: *ev and *elen, or *ev NULL for a NULL element. 0, or -1
 * when the bytes end early or a length is invalid. */
int binary_array_next(binary_array *a, const char **ev, size_t *elen);

#endif
