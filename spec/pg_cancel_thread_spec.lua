-- pg.cancel(token) is meant for another OS thread (an OpenResty worker-thread
-- VM, say), which plain Lua cannot start: test/pg/cancel_thread.c does it in C
-- on the same registry (session_cancel_token) that pg.cancel uses, against the
-- test server. Built here with the system compiler, the core's C sources and
-- libpq.
local shell = require "support.shell"

describe("cancelling from another OS thread", function()
  it("stops a running statement, leaves the connection usable, and a closed token names nothing", function()
    local incdir = shell.capture("pg_config --includedir")
    local out = "build/test/cancel_thread"
    local sources = table.concat({
      "test/pg/cancel_thread.c", "csrc/strbuf.c", "csrc/redact.c", "csrc/sqlstate.c", "csrc/conninfo.c",
      "csrc/pgtype.c", "csrc/session.c",
    }, " ")
    assert.is_true(shell.sh(("mkdir -p build/test && env -u LD_PRELOAD cc -std=c99 -D_POSIX_C_SOURCE=200809L "
      .. "-O1 -g -Icsrc -I%s -o %s %s -lpq -lpthread -lm"):format(incdir, out, sources)), "cannot build " .. out)
    local line = shell.capture("env -u LD_PRELOAD " .. out .. " 2>&1")
    assert.matches("sqlstate=57014", line, 1, true)
    assert.matches(" ok$", line)
  end)
end)
