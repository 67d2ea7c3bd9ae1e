-- pg.cancel(token) is meant for another OS thread (an OpenResty worker-thread
-- VM, say), which plain Lua cannot start: test/pg/cancel_thread.c does it in C
-- on the same registry (session_cancel_token) that pg.cancel uses, against the
-- test server. `make build/test/cancel_thread` builds it from the core's
-- Lua-free C sources and libpq.
local shell = require "support.shell"

describe("cancelling from another OS thread", function()
  it("stops a running statement, leaves the connection usable, and a closed token names nothing", function()
    local out = "build/test/cancel_thread"
    assert.is_true(shell.sh("env -u LD_PRELOAD make -s " .. out .. " >/dev/null"), "cannot build " .. out)
    local line = shell.capture("env -u LD_PRELOAD " .. out .. " 2>&1")
    assert.matches("sqlstate=57014", line, 1, true)
    assert.matches(" ok$", line)
  end)
end)
