/* PostgreSQL's binary wire format for the types the core decodes without
 * text: which types qualify, and reading their values. Pure C, no Lua, no
 * libpq. */
#ifndef CRPG_BINARY_H
#define CRPG_BINARY_H

#include <stddef.h>

/* 1 when a result column of type oid may travel in binary and decode to
 * exactly the value its text form gives: bool, bytea, name, int8, int2,
 * int4, text, oid, json, float8, bpchar, varchar, uuid, jsonb. (float4 is
 * not: its text is the shortest decimal, which reads back as another double
 * than the binary value widened.) */
int binary_eligible(unsigned int oid);

/* A signed integer of 2, 4 or 8 bytes, or an unsigned one of 4 (oid, when
 * is_unsigned), in network byte order. 0, or -1 for another length. */
int binary_int(const char *v, size_t len, int is_unsigned, long long *out);

/* An IEEE 754 double of 8 bytes in network byte order. 0, or -1. */
int binary_float8(const char *v, size_t len, double *out);

/* A uuid of 16 bytes as the server prints it: lowercase hex with dashes
 * (36 characters, no NUL written). 0, or -1 for another length. */
int binary_uuid(const char *v, size_t len, char out[36]);

#endif
