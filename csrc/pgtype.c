/* Type OIDs -> what the decoder needs to know (see pgtype.h). */
#include "pgtype.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* pg_type.dat of PostgreSQL 15, composite types left out: oid, typelem (for
 * arrays, whose output is array_out), typbasetype, typtype, typdelim, typname.
 * Sorted by oid. Generated with
 *   SELECT oid, typname, typtype, typdelim, CASE WHEN typoutput = 'array_out'::regproc
 *   THEN typelem ELSE 0 END FROM pg_type WHERE oid < 10000 AND typtype <> 'c' ORDER BY oid
 * (int2vector and oidvector have an element type but print "1 2": not arrays here). */
static const pgtype_info builtins[] = {
  {16, 0, 0, 'b', ',', "bool"},
  {17, 0, 0, 'b', ',', "bytea"},
  {18, 0, 0, 'b', ',', "char"},
  {19, 0, 0, 'b', ',', "name"},
  {20, 0, 0, 'b', ',', "int8"},
  {21, 0, 0, 'b', ',', "int2"},
  {22, 0, 0, 'b', ',', "int2vector"},
  {23, 0, 0, 'b', ',', "int4"},
  {24, 0, 0, 'b', ',', "regproc"},
  {25, 0, 0, 'b', ',', "text"},
  {26, 0, 0, 'b', ',', "oid"},
  {27, 0, 0, 'b', ',', "tid"},
  {28, 0, 0, 'b', ',', "xid"},
  {29, 0, 0, 'b', ',', "cid"},
  {30, 0, 0, 'b', ',', "oidvector"},
  {32, 0, 0, 'p', ',', "pg_ddl_command"},
  {114, 0, 0, 'b', ',', "json"},
  {142, 0, 0, 'b', ',', "xml"},
  {143, 142, 0, 'b', ',', "_xml"},
  {194, 0, 0, 'b', ',', "pg_node_tree"},
  {199, 114, 0, 'b', ',', "_json"},
  {210, 71, 0, 'b', ',', "_pg_type"},
  {269, 0, 0, 'p', ',', "table_am_handler"},
  {270, 75, 0, 'b', ',', "_pg_attribute"},
  {271, 5069, 0, 'b', ',', "_xid8"},
  {272, 81, 0, 'b', ',', "_pg_proc"},
  {273, 83, 0, 'b', ',', "_pg_class"},
  {325, 0, 0, 'p', ',', "index_am_handler"},
  {600, 0, 0, 'b', ',', "point"},
  {601, 0, 0, 'b', ',', "lseg"},
  {602, 0, 0, 'b', ',', "path"},
  {603, 0, 0, 'b', ';', "box"},
  {604, 0, 0, 'b', ',', "polygon"},
  {628, 0, 0, 'b', ',', "line"},
  {629, 628, 0, 'b', ',', "_line"},
  {650, 0, 0, 'b', ',', "cidr"},
  {651, 650, 0, 'b', ',', "_cidr"},
  {700, 0, 0, 'b', ',', "float4"},
  {701, 0, 0, 'b', ',', "float8"},
  {705, 0, 0, 'p', ',', "unknown"},
  {718, 0, 0, 'b', ',', "circle"},
  {719, 718, 0, 'b', ',', "_circle"},
  {774, 0, 0, 'b', ',', "macaddr8"},
  {775, 774, 0, 'b', ',', "_macaddr8"},
  {790, 0, 0, 'b', ',', "money"},
  {791, 790, 0, 'b', ',', "_money"},
  {829, 0, 0, 'b', ',', "macaddr"},
  {869, 0, 0, 'b', ',', "inet"},
  {1000, 16, 0, 'b', ',', "_bool"},
  {1001, 17, 0, 'b', ',', "_bytea"},
  {1002, 18, 0, 'b', ',', "_char"},
  {1003, 19, 0, 'b', ',', "_name"},
  {1005, 21, 0, 'b', ',', "_int2"},
  {1006, 22, 0, 'b', ',', "_int2vector"},
  {1007, 23, 0, 'b', ',', "_int4"},
  {1008, 24, 0, 'b', ',', "_regproc"},
  {1009, 25, 0, 'b', ',', "_text"},
  {1010, 27, 0, 'b', ',', "_tid"},
  {1011, 28, 0, 'b', ',', "_xid"},
  {1012, 29, 0, 'b', ',', "_cid"},
  {1013, 30, 0, 'b', ',', "_oidvector"},
  {1014, 1042, 0, 'b', ',', "_bpchar"},
  {1015, 1043, 0, 'b', ',', "_varchar"},
  {1016, 20, 0, 'b', ',', "_int8"},
  {1017, 600, 0, 'b', ',', "_point"},
  {1018, 601, 0, 'b', ',', "_lseg"},
  {1019, 602, 0, 'b', ',', "_path"},
  {1020, 603, 0, 'b', ';', "_box"},
  {1021, 700, 0, 'b', ',', "_float4"},
  {1022, 701, 0, 'b', ',', "_float8"},
  {1027, 604, 0, 'b', ',', "_polygon"},
  {1028, 26, 0, 'b', ',', "_oid"},
  {1033, 0, 0, 'b', ',', "aclitem"},
  {1034, 1033, 0, 'b', ',', "_aclitem"},
  {1040, 829, 0, 'b', ',', "_macaddr"},
  {1041, 869, 0, 'b', ',', "_inet"},
  {1042, 0, 0, 'b', ',', "bpchar"},
  {1043, 0, 0, 'b', ',', "varchar"},
  {1082, 0, 0, 'b', ',', "date"},
  {1083, 0, 0, 'b', ',', "time"},
  {1114, 0, 0, 'b', ',', "timestamp"},
  {1115, 1114, 0, 'b', ',', "_timestamp"},
  {1182, 1082, 0, 'b', ',', "_date"},
  {1183, 1083, 0, 'b', ',', "_time"},
  {1184, 0, 0, 'b', ',', "timestamptz"},
  {1185, 1184, 0, 'b', ',', "_timestamptz"},
  {1186, 0, 0, 'b', ',', "interval"},
  {1187, 1186, 0, 'b', ',', "_interval"},
  {1231, 1700, 0, 'b', ',', "_numeric"},
  {1263, 2275, 0, 'b', ',', "_cstring"},
  {1266, 0, 0, 'b', ',', "timetz"},
  {1270, 1266, 0, 'b', ',', "_timetz"},
  {1560, 0, 0, 'b', ',', "bit"},
  {1561, 1560, 0, 'b', ',', "_bit"},
  {1562, 0, 0, 'b', ',', "varbit"},
  {1563, 1562, 0, 'b', ',', "_varbit"},
  {1700, 0, 0, 'b', ',', "numeric"},
  {1790, 0, 0, 'b', ',', "refcursor"},
  {2201, 1790, 0, 'b', ',', "_refcursor"},
  {2202, 0, 0, 'b', ',', "regprocedure"},
  {2203, 0, 0, 'b', ',', "regoper"},
  {2204, 0, 0, 'b', ',', "regoperator"},
  {2205, 0, 0, 'b', ',', "regclass"},
  {2206, 0, 0, 'b', ',', "regtype"},
  {2207, 2202, 0, 'b', ',', "_regprocedure"},
  {2208, 2203, 0, 'b', ',', "_regoper"},
  {2209, 2204, 0, 'b', ',', "_regoperator"},
  {2210, 2205, 0, 'b', ',', "_regclass"},
  {2211, 2206, 0, 'b', ',', "_regtype"},
  {2249, 0, 0, 'p', ',', "record"},
  {2275, 0, 0, 'p', ',', "cstring"},
  {2276, 0, 0, 'p', ',', "any"},
  {2277, 0, 0, 'p', ',', "anyarray"},
  {2278, 0, 0, 'p', ',', "void"},
  {2279, 0, 0, 'p', ',', "trigger"},
  {2280, 0, 0, 'p', ',', "language_handler"},
  {2281, 0, 0, 'p', ',', "internal"},
  {2283, 0, 0, 'p', ',', "anyelement"},
  {2287, 2249, 0, 'p', ',', "_record"},
  {2776, 0, 0, 'p', ',', "anynonarray"},
  {2949, 2970, 0, 'b', ',', "_txid_snapshot"},
  {2950, 0, 0, 'b', ',', "uuid"},
  {2951, 2950, 0, 'b', ',', "_uuid"},
  {2970, 0, 0, 'b', ',', "txid_snapshot"},
  {3115, 0, 0, 'p', ',', "fdw_handler"},
  {3220, 0, 0, 'b', ',', "pg_lsn"},
  {3221, 3220, 0, 'b', ',', "_pg_lsn"},
  {3310, 0, 0, 'p', ',', "tsm_handler"},
  {3361, 0, 0, 'b', ',', "pg_ndistinct"},
  {3402, 0, 0, 'b', ',', "pg_dependencies"},
  {3500, 0, 0, 'p', ',', "anyenum"},
  {3614, 0, 0, 'b', ',', "tsvector"},
  {3615, 0, 0, 'b', ',', "tsquery"},
  {3642, 0, 0, 'b', ',', "gtsvector"},
  {3643, 3614, 0, 'b', ',', "_tsvector"},
  {3644, 3642, 0, 'b', ',', "_gtsvector"},
  {3645, 3615, 0, 'b', ',', "_tsquery"},
  {3734, 0, 0, 'b', ',', "regconfig"},
  {3735, 3734, 0, 'b', ',', "_regconfig"},
  {3769, 0, 0, 'b', ',', "regdictionary"},
  {3770, 3769, 0, 'b', ',', "_regdictionary"},
  {3802, 0, 0, 'b', ',', "jsonb"},
  {3807, 3802, 0, 'b', ',', "_jsonb"},
  {3831, 0, 0, 'p', ',', "anyrange"},
  {3838, 0, 0, 'p', ',', "event_trigger"},
  {3904, 0, 0, 'r', ',', "int4range"},
  {3905, 3904, 0, 'b', ',', "_int4range"},
  {3906, 0, 0, 'r', ',', "numrange"},
  {3907, 3906, 0, 'b', ',', "_numrange"},
  {3908, 0, 0, 'r', ',', "tsrange"},
  {3909, 3908, 0, 'b', ',', "_tsrange"},
  {3910, 0, 0, 'r', ',', "tstzrange"},
  {3911, 3910, 0, 'b', ',', "_tstzrange"},
  {3912, 0, 0, 'r', ',', "daterange"},
  {3913, 3912, 0, 'b', ',', "_daterange"},
  {3926, 0, 0, 'r', ',', "int8range"},
  {3927, 3926, 0, 'b', ',', "_int8range"},
  {4072, 0, 0, 'b', ',', "jsonpath"},
  {4073, 4072, 0, 'b', ',', "_jsonpath"},
  {4089, 0, 0, 'b', ',', "regnamespace"},
  {4090, 4089, 0, 'b', ',', "_regnamespace"},
  {4096, 0, 0, 'b', ',', "regrole"},
  {4097, 4096, 0, 'b', ',', "_regrole"},
  {4191, 0, 0, 'b', ',', "regcollation"},
  {4192, 4191, 0, 'b', ',', "_regcollation"},
  {4451, 0, 0, 'm', ',', "int4multirange"},
  {4532, 0, 0, 'm', ',', "nummultirange"},
  {4533, 0, 0, 'm', ',', "tsmultirange"},
  {4534, 0, 0, 'm', ',', "tstzmultirange"},
  {4535, 0, 0, 'm', ',', "datemultirange"},
  {4536, 0, 0, 'm', ',', "int8multirange"},
  {4537, 0, 0, 'p', ',', "anymultirange"},
  {4538, 0, 0, 'p', ',', "anycompatiblemultirange"},
  {4600, 0, 0, 'b', ',', "pg_brin_bloom_summary"},
  {4601, 0, 0, 'b', ',', "pg_brin_minmax_multi_summary"},
  {5017, 0, 0, 'b', ',', "pg_mcv_list"},
  {5038, 0, 0, 'b', ',', "pg_snapshot"},
  {5039, 5038, 0, 'b', ',', "_pg_snapshot"},
  {5069, 0, 0, 'b', ',', "xid8"},
  {5077, 0, 0, 'p', ',', "anycompatible"},
  {5078, 0, 0, 'p', ',', "anycompatiblearray"},
  {5079, 0, 0, 'p', ',', "anycompatiblenonarray"},
  {5080, 0, 0, 'p', ',', "anycompatiblerange"},
  {6150, 4451, 0, 'b', ',', "_int4multirange"},
  {6151, 4532, 0, 'b', ',', "_nummultirange"},
  {6152, 4533, 0, 'b', ',', "_tsmultirange"},
  {6153, 4534, 0, 'b', ',', "_tstzmultirange"},
  {6155, 4535, 0, 'b', ',', "_datemultirange"},
  {6157, 4536, 0, 'b', ',', "_int8multirange"},
};

#define NBUILTINS ((int)(sizeof builtins / sizeof builtins[0]))

/* Binary search in a sorted array of n entries; the index of oid, or -(insert point) - 1. */
static int search(const pgtype_info *items, int n, Oid oid) {
  int lo = 0, hi = n - 1;
  while (lo <= hi) {
    int mid = lo + (hi - lo) / 2;
    if (items[mid].oid == oid) return mid;
    if (items[mid].oid < oid) lo = mid + 1;
    else hi = mid - 1;
  }
  return -lo - 1;
}

/* Built-in OIDs below SMALL_OIDS, indexed directly (entry + 1; 0: none):
 * the lookup behind every decoded column. Built once, on first use. */
#define SMALL_OIDS 4096
static unsigned short small_index[SMALL_OIDS];
static pthread_once_t small_once = PTHREAD_ONCE_INIT;

static void build_small_index(void) {
  int i;
  for (i = 0; i < NBUILTINS; i++)
    if (builtins[i].oid < SMALL_OIDS) small_index[builtins[i].oid] = (unsigned short)(i + 1);
}

const pgtype_info *pgtype_builtin(Oid oid) {
  int i;
  if (oid < SMALL_OIDS) {
    (void)pthread_once(&small_once, build_small_index);
    i = small_index[oid];
    return i ? &builtins[i - 1] : NULL;
  }
  i = search(builtins, NBUILTINS, oid);
  return i >= 0 ? &builtins[i] : NULL;
}

const pgtype_info *pgtype_get(const pgtype_cache *c, Oid oid) {
  const pgtype_info *t = pgtype_builtin(oid);
  int i;
  if (t || !c->count) return t;
  i = search(c->items, c->count, oid);
  return i >= 0 ? &c->items[i] : NULL;
}

static int add(pgtype_cache *c, const pgtype_info *t) {
  int i = search(c->items, c->count, t->oid);
  if (i >= 0) return 0;
  i = -i - 1;
  if (c->count == c->cap) {
    int cap = c->cap ? c->cap * 2 : 16;
    pgtype_info *items = realloc(c->items, (size_t)cap * sizeof *items);
    if (!items) return -1;
    c->items = items;
    c->cap = cap;
  }
  memmove(&c->items[i + 1], &c->items[i], (size_t)(c->count - i) * sizeof *c->items);
  c->items[i] = *t;
  c->count++;
  return 0;
}

static Oid parse_oid(const char *s) {
  return (Oid)strtoul(s, NULL, 10);
}

/* Stores the rows of a pg_type query (the columns of TYPE_COLUMNS). */
static int store_rows(pgtype_cache *c, const PGresult *r) {
  int row;
  for (row = 0; row < PQntuples(r); row++) {
    pgtype_info t;
    memset(&t, 0, sizeof t);
    t.oid = parse_oid(PQgetvalue(r, row, 0));
    snprintf(t.name, sizeof t.name, "%s", PQgetvalue(r, row, 1));
    t.typtype = PQgetvalue(r, row, 2)[0];
    t.delim = PQgetvalue(r, row, 3)[0];
    t.elem = parse_oid(PQgetvalue(r, row, 4));
    t.base = parse_oid(PQgetvalue(r, row, 5));
    if (add(c, &t)) return -1;
  }
  return 0;
}

#define TYPE_COLUMNS \
  "SELECT t.oid, t.typname, t.typtype, t.typdelim, " \
  "CASE WHEN t.typoutput = 'pg_catalog.array_out'::pg_catalog.regproc THEN t.typelem ELSE 0 END, " \
  "t.typbasetype FROM pg_catalog.pg_type t "

int pgtype_fetch(PGconn *pg, pgtype_cache *c, const Oid *oids, int n) {
  int round;
  /* The first round asks for what is missing of oids; the next ones for the
   * element and base types the answers name (an array of a domain over an
   * enum: three rounds). */
  int known;
  for (known = 0; known < n && (!oids[known] || pgtype_get(c, oids[known])); known++) {}
  if (known == n) return 0; /* all known: the common case, no allocation */
  for (round = 0; round < 8; round++) {
    char *list;
    size_t len = 2, used = 0;
    int i, missing = 0;
    const char *values[1];
    PGresult *r;

    for (i = 0; i < n; i++) len += 12;
    len += (size_t)c->count * 24;
    list = malloc(len);
    if (!list) return -1;
    list[used++] = '{';
    for (i = 0; i < n && round == 0; i++) {
      if (oids[i] && !pgtype_get(c, oids[i])) {
        used += (size_t)snprintf(list + used, len - used, "%s%u", missing ? "," : "", oids[i]);
        missing++;
      }
    }
    for (i = 0; i < c->count && round > 0; i++) {
      Oid refs[2];
      int k;
      refs[0] = c->items[i].elem;
      refs[1] = c->items[i].base;
      for (k = 0; k < 2; k++)
        if (refs[k] && !pgtype_get(c, refs[k])) {
          used += (size_t)snprintf(list + used, len - used, "%s%u", missing ? "," : "", refs[k]);
          missing++;
        }
    }
    list[used++] = '}';
    list[used] = '\0';
    if (!missing) {
      free(list);
      return 0;
    }
    values[0] = list;
    r = PQexecParams(pg, TYPE_COLUMNS "WHERE t.oid = ANY ($1::pg_catalog.oid[])",
                     1, NULL, values, NULL, NULL, 0);
    free(list);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || store_rows(c, r) != 0 || PQntuples(r) == 0) {
      PQclear(r);
      return -1; /* failed, or the server knows none of them: do not ask again now */
    }
    PQclear(r);
  }
  return 0;
}

/* Keeps name -> oid (best effort: out of memory only means asking again). */
static void remember(pgtype_cache *c, const char *name, Oid oid) {
  char *copy;
  if (c->nnames == c->names_cap) {
    int cap = c->names_cap ? c->names_cap * 2 : 8;
    pgtype_name *names = realloc(c->names, (size_t)cap * sizeof *names);
    if (!names) return;
    c->names = names;
    c->names_cap = cap;
  }
  copy = malloc(strlen(name) + 1);
  if (!copy) return;
  strcpy(copy, name);
  c->names[c->nnames].name = copy;
  c->names[c->nnames++].oid = oid;
}

const pgtype_info *pgtype_find(PGconn *pg, pgtype_cache *c, Oid oid) {
  const pgtype_info *t = pgtype_get(c, oid);
  if (t || !oid) return t;
  pgtype_fetch(pg, c, &oid, 1);
  return pgtype_get(c, oid);
}

long pgtype_resolve(PGconn *pg, pgtype_cache *c, const char *name) {
  const char *values[1];
  PGresult *r;
  long oid = -1;
  int i;
  for (i = 0; i < c->nnames; i++)
    if (strcmp(c->names[i].name, name) == 0) return (long)c->names[i].oid;
  values[0] = name;
  r = PQexecParams(pg, TYPE_COLUMNS "WHERE t.oid = pg_catalog.to_regtype($1)",
                   1, NULL, values, NULL, NULL, 0);
  if (PQresultStatus(r) == PGRES_TUPLES_OK) {
    oid = PQntuples(r) ? (long)parse_oid(PQgetvalue(r, 0, 0)) : 0;
    if (oid && !pgtype_builtin((Oid)oid) && store_rows(c, r)) oid = -1;
  }
  PQclear(r);
  if (oid >= 0) remember(c, name, (Oid)oid);
  return oid;
}

void pgtype_cache_free(pgtype_cache *c) {
  int i;
  for (i = 0; i < c->nnames; i++) free(c->names[i].name);
  free(c->names);
  free(c->items);
  memset(c, 0, sizeof *c);
}
