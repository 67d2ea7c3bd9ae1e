/* What the server says about a type OID (pg_type), cached per connection.
 * Pure C on libpq, no Lua: the result decoder asks here once per OID it does
 * not know and keeps the answer with the session. */
#ifndef CRPG_PGTYPE_H
#define CRPG_PGTYPE_H

#include <libpq-fe.h>

typedef struct pgtype_info {
  Oid oid;
  Oid elem;            /* pg_type.typelem of an array type (typcategory 'A'), else 0 */
  Oid base;            /* pg_type.typbasetype of a domain, else 0 */
  char typtype;        /* b base, c composite, d domain, e enum, p pseudo, r range, m multirange */
  char delim;          /* pg_type.typdelim: the array element separator (',' but ';' for box) */
  char name[64];       /* pg_type.typname (NAMEDATALEN - 1 bytes at most) */
} pgtype_info;

typedef struct pgtype_name {
  char *name;          /* as the caller spelled it */
  Oid oid;             /* 0: the server has no such type */
} pgtype_name;

typedef struct pgtype_cache {
  pgtype_info *items;  /* sorted by oid */
  int count, cap;
  pgtype_name *names;  /* names resolved by pgtype_resolve */
  int nnames, names_cap;
} pgtype_cache;

/* The built-in types every server has (pg_type.dat), known without asking:
 * the entry for oid, or NULL. */
const pgtype_info *pgtype_builtin(Oid oid);

/* The entry for oid: built in, or cached by an earlier pgtype_fetch; NULL
 * when the server has not been asked yet. */
const pgtype_info *pgtype_get(const pgtype_cache *c, Oid oid);

/* Asks the server about every oid in oids[0..n) that is neither built in nor
 * cached, and about the element and base types those refer to, in one query
 * per level of reference. Returns 0, or -1 when a query failed (the cache
 * keeps what it learned; unknown OIDs then decode as text). */
int pgtype_fetch(PGconn *pg, pgtype_cache *c, const Oid *oids, int n);

/* pgtype_get, asking the server first when oid is not known yet; NULL when
 * the server could not say. */
const pgtype_info *pgtype_find(PGconn *pg, pgtype_cache *c, Oid oid);

/* Resolves a type name as the server does (to_regtype: search_path, schema
 * qualification, aliases such as "integer") once per cache, and caches the
 * type. Returns the OID, 0 when there is no such type, or -1 on a failed query. */
long pgtype_resolve(PGconn *pg, pgtype_cache *c, const char *name);

/* Frees the entries. */
void pgtype_cache_free(pgtype_cache *c);

#endif
