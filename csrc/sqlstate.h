/* Error kinds and the one table of SQLSTATE facts: which kind a server error
 * is, whether a transaction that failed with it may succeed if run again, and
 * whether it means a cached prepared statement went stale. Pure C, no Lua. */
#ifndef CRPG_SQLSTATE_H
#define CRPG_SQLSTATE_H

/* The core's error kinds; the order indexes the pool's error counters. Kinds
 * the Lua layers register (pg.register_error_kind) come after KIND_COUNT and
 * are not counted by pools. */
typedef enum {
  KIND_CONNECT, KIND_SERVER, KIND_TIMEOUT, KIND_POOL_TIMEOUT, KIND_CLOSED,
  KIND_INVALID_INPUT, KIND_CONFLICT, KIND_COUNT
} error_kind;

extern const char *const sqlstate_kind_names[KIND_COUNT];

typedef struct sqlstate_info {
  error_kind kind;      /* KIND_SERVER unless the table says otherwise */
  int retryable;        /* serialization failure or deadlock: run the transaction again */
  int stale_plan;       /* the cached prepared statement must be prepared again */
  int rejects_value;    /* the server refused a value (check, not null, foreign key, bad text) */
} sqlstate_info;

/* Facts for a SQLSTATE (NULL gives the defaults). message, the primary
 * message or NULL, tells the stale-plan cases that share a generic code. */
sqlstate_info sqlstate_lookup(const char *state, const char *message);

#endif
