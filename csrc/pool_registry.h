/* Pools as a process holds them: a pool_core with its maintenance thread, and,
 * when it has a name, its place in the process-wide registry. Pure C on
 * pool_core.h, no Lua.
 *
 * A named pool is one pool per process, whichever thread or Lua state asks:
 * pool_entry_open(name, ...) returns the living pool of that name (checking
 * that the options the caller gave agree with it) or makes it. Each holder
 * (a Lua pool object, in any Lua state) releases its hold with
 * pool_entry_release; the last release closes the pool. pool_entry_close
 * closes it for every holder at once: it leaves the registry (a later open of
 * the name makes a new pool), acquire fails with KIND_CLOSED, idle sessions
 * close, busy ones close as they are released.
 *
 * The maintenance thread keeps min sessions warm and closes idle ones past
 * idle_timeout (and any past max_lifetime) on time, even when nothing uses
 * the pool. It is started with the pool and stopped (joined) when the pool
 * closes. */
#ifndef CRPG_POOL_REGISTRY_H
#define CRPG_POOL_REGISTRY_H

#include <stddef.h>

#include "pool_core.h"

/* Which options of a pool_config the caller gave (the others are defaults and
 * agree with any living pool). */
enum {
  POOL_OPT_CONNINFO = 1 << 0,
  POOL_OPT_MIN = 1 << 1,
  POOL_OPT_MAX = 1 << 2,
  POOL_OPT_CACHE_SIZE = 1 << 3,
  POOL_OPT_IDLE_TIMEOUT = 1 << 4,
  POOL_OPT_CONNECT_TIMEOUT = 1 << 5,
  POOL_OPT_ACQUIRE_TIMEOUT = 1 << 6,
  POOL_OPT_MAX_LIFETIME = 1 << 7,
  POOL_OPT_SLOW_MS = 1 << 8,
  POOL_OPT_QUERY_TIMEOUT = 1 << 9,
  POOL_OPT_RESET = 1 << 10
};

typedef struct pool_entry pool_entry;

/* Opens a pool and holds it once. name NULL (or ""): a new private pool. Else
 * the living pool of that name when there is one (*created = 0), after
 * checking that each option in `given` equals the living pool's; or a new
 * pool registered under the name (*created = 1). NULL with err filled when an
 * option disagrees (naming it), the config is invalid, or memory ran out. */
pool_entry *pool_entry_open(const char *name, const pool_config *c, unsigned given, int *created, char *err,
                            size_t errlen);

/* The pool itself (valid while held). */
pool_core *pool_entry_core(const pool_entry *e);

/* The name, or NULL for a private pool. */
const char *pool_entry_name(const pool_entry *e);

/* 1 once the pool was closed (by any holder), else 0. */
int pool_entry_is_closed(pool_entry *e);

/* 1 while the maintenance thread runs, else 0. */
int pool_entry_has_thread(pool_entry *e);

/* Closes the pool for every holder (see above) and waits up to timeout
 * seconds for busy sessions. Returns how many are still open. Idempotent. */
int pool_entry_close(pool_entry *e, double timeout);

/* Drops one hold; the last one closes the pool and frees the entry (the
 * pool_core itself lives on while sessions it lent are out). */
void pool_entry_release(pool_entry *e);

/* How many named pools are registered (for tests). */
int pool_registry_count(void);

#endif
