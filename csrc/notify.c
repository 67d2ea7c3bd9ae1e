/* LISTEN/NOTIFY on a connection: conn:listen(channel), conn:unlisten(channel)
 * and conn:wait_notification(timeout). module.c installs them into the conn
 * metatable (a pool lends connections for one statement, so listening belongs
 * to a connection the caller keeps). No type of its own: a notification is a
 * table { channel =, payload =, pid = }. */
#include <errno.h>
#include <poll.h>
#include <string.h>

#include "crpg.h"

/* Runs "<verb> <quoted channel>" on the connection at 1. */
static int run_verb(lua_State *L, const char *verb) {
  size_t len;
  const char *channel = luaL_checklstring(L, 2, &len);
  session *s = crpg_check_conn(L, 1)->s;
  exec_target t;
  char *quoted;
  if (len == 0 || memchr(channel, 0, len))
    return crpg_push_error(L, KIND_INVALID_INPUT, "channel must be a non-empty string without NUL bytes");
  quoted = PQescapeIdentifier(s->pg, channel, len);
  if (!quoted) return crpg_push_error(L, KIND_INVALID_INPUT, PQerrorMessage(s->pg));
  lua_settop(L, 2);
  lua_pushfstring(L, "%s %s", verb, quoted);   /* 3 */
  PQfreemem(quoted);
  crpg_conn_target(L, 1, &t);                 /* hooks at 4 */
  if (crpg_run(L, &t, 3, 0, 0, 1) != 1) return 2;
  lua_pushboolean(L, 1);
  return 1;
}

/* conn:listen(channel) -> true | nil, err   (LISTEN "channel", quoted) */
static int conn_listen(lua_State *L) { return run_verb(L, "LISTEN"); }

/* conn:unlisten(channel) -> true | nil, err   ("*" is a channel name here;
 * use conn:exec("UNLISTEN *") for all) */
static int conn_unlisten(lua_State *L) { return run_verb(L, "UNLISTEN"); }

/* Pushes the next queued notification as a table, or returns 0. */
static int push_next(lua_State *L, PGconn *pg) {
  PGnotify *n = PQnotifies(pg);
  if (!n) return 0;
  lua_createtable(L, 0, 3);
  lua_pushstring(L, n->relname);
  lua_setfield(L, -2, "channel");
  lua_pushstring(L, n->extra ? n->extra : "");
  lua_setfield(L, -2, "payload");
  lua_pushinteger(L, n->be_pid);
  lua_setfield(L, -2, "pid");
  PQfreemem(n);
  return 1;
}

/* conn:wait_notification([timeout]) -> { channel, payload, pid } | nil (timed
 * out) | nil, err (connection lost)
 * Returns a notification already received (during earlier statements too) at
 * once; otherwise sleeps in poll() on the connection's socket, up to timeout
 * seconds (default: forever; 0: only look). Blocks the calling thread. */
static int conn_wait_notification(lua_State *L) {
  session *s = crpg_check_conn(L, 1)->s;
  double timeout = (double)luaL_optnumber(L, 2, -1), deadline;
  PGconn *pg = s->pg;

  if (s->stream_open) session_settle(s);
  deadline = timeout >= 0 ? session_now() + timeout : 0;
  for (;;) {
    struct pollfd p;
    int ms, rc;
    if (!PQconsumeInput(pg)) return crpg_push_error(L, KIND_CONNECT, PQerrorMessage(pg));
    if (push_next(L, pg)) return 1;
    if (timeout >= 0) {
      double left = deadline - session_now();
      if (left <= 0) {
        lua_pushnil(L);
        return 1;
      }
      ms = left > 86400.0 ? 86400000 : (int)(left * 1000.0) + 1; /* math.huge: a day at a time */
    } else {
      ms = -1;
    }
    p.fd = PQsocket(pg);
    p.events = POLLIN;
    p.revents = 0;
    rc = poll(&p, 1, ms);
    if (rc < 0 && errno != EINTR) return crpg_push_error(L, KIND_CONNECT, strerror(errno));
  }
}

void crpg_open_notify(lua_State *L) {
  static const luaL_Reg methods[] = {
    {"listen", conn_listen},
    {"unlisten", conn_unlisten},
    {"wait_notification", conn_wait_notification},
    {NULL, NULL},
  };
  crpg_add_methods(L, CRPG_CONN_MT, methods);
}
