/* The table of SQLSTATE facts (see sqlstate.h). */
#include <string.h>

#include "sqlstate.h"

const char *const sqlstate_kind_names[KIND_COUNT] = {
  "connect", "server", "timeout", "pool_timeout", "closed", "invalid_input", "conflict",
};

typedef struct fact {
  const char *code;     /* five characters, or a two-character class */
  const char *needle;   /* required in the message, or NULL */
  error_kind kind;
  int retryable, stale_plan, rejects_value;
} fact;

static const fact facts[] = {
  {"23505", NULL, KIND_CONFLICT, 0, 0, 0},               /* unique_violation */
  {"57014", NULL, KIND_TIMEOUT, 0, 0, 0},                /* query_canceled (statement_timeout) */
  {"55P03", NULL, KIND_TIMEOUT, 0, 0, 0},                /* lock_not_available (lock_timeout) */
  {"57P01", NULL, KIND_CLOSED, 0, 0, 0},                 /* admin_shutdown */
  {"57P02", NULL, KIND_CLOSED, 0, 0, 0},                 /* crash_shutdown */
  {"57P03", NULL, KIND_CLOSED, 0, 0, 0},                 /* cannot_connect_now */
  {"08", NULL, KIND_CLOSED, 0, 0, 0},                    /* connection exceptions */
  {"40001", NULL, KIND_SERVER, 1, 0, 0},                 /* serialization_failure */
  {"40P01", NULL, KIND_SERVER, 1, 0, 0},                 /* deadlock_detected */
  {"26000", NULL, KIND_SERVER, 0, 1, 0},                 /* prepared statement does not exist */
  {"0A000", "cached plan", KIND_SERVER, 0, 1, 0},        /* cached plan must not change result type */
  {"XX000", "cache lookup failed", KIND_SERVER, 0, 1, 0},
  {"23514", NULL, KIND_SERVER, 0, 0, 1},                 /* check_violation */
  {"23503", NULL, KIND_SERVER, 0, 0, 1},                 /* foreign_key_violation */
  {"23502", NULL, KIND_SERVER, 0, 0, 1},                 /* not_null_violation */
  {"22P02", NULL, KIND_SERVER, 0, 0, 1},                 /* invalid_text_representation */
  {"22001", NULL, KIND_SERVER, 0, 0, 1},                 /* string_data_right_truncation */
};

sqlstate_info sqlstate_lookup(const char *state, const char *message) {
  sqlstate_info info = {KIND_SERVER, 0, 0, 0};
  size_t i;
  if (!state) return info;
  for (i = 0; i < sizeof facts / sizeof facts[0]; i++) {
    const fact *f = &facts[i];
    size_t n = strlen(f->code);
    if (strncmp(state, f->code, n) != 0 || (n == 5 && state[5] != '\0')) continue;
    if (f->needle && !(message && strstr(message, f->needle))) continue;
    info.kind = f->kind;
    info.retryable = f->retryable;
    info.stale_plan = f->stale_plan;
    info.rejects_value = f->rejects_value;
    return info;
  }
  return info;
}
