-- Issue 7, secrets: malformed and hostile conninfo strings holding a known
-- password go through every door that builds a message from a conninfo
-- (pg.connect, pg.pool and tostring(pool), the pool's errors and last_error,
-- db.new, the service's tostring, health and errors, its logger, pg.redact,
-- and the CLI from DATABASE_URL, DB_* and PG*). No piece of the password (no
-- substring of 4 bytes or more) may come out anywhere.
local pg = require "coderunner.pg"
local db = require "coderunner.db"

local VM = os.getenv("CODERUNNER_LUA") or (type(jit) == "table" and "luajit" or "lua5.4")

local PASSWORDS = {
  "p@ssw0rd",          -- the issue's example: a raw '@'
  "Zx:9/q?W#v",        -- ':', '/', '?', '#'
  "k%40Vq7%zz",        -- a percent-encoding, and a broken one
  "Qz 7' \"Yx\\j",     -- spaces, both quotes, a backslash
  "uU@@vV//wW",
}

-- Every substring of 4 bytes of s.
local function fragments(s)
  local out = {}
  for i = 1, #s - 3 do out[#out + 1] = s:sub(i, i + 3) end
  return out
end

local function url_encode(s)
  return (s:gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

local function kw_quote(s)
  return "'" .. s:gsub("\\", "\\\\"):gsub("'", "\\'") .. "'"
end

-- The conninfo strings, malformed and hostile, that hold pw.
local function conninfos(pw)
  local q = kw_quote(pw)
  local kw_escaped = pw:gsub("\\", "\\\\"):gsub("'", "\\'"):gsub(" ", "\\ ")
  return {
    "postgres://u:" .. pw .. "@127.0.0.1:1/db",
    "postgresql://u:" .. pw .. "@127.0.0.1:1/db?sslmode=disable",
    "postgres://u:" .. pw .. "@[::1/db",
    "postgres://u:" .. pw .. "@127.0.0.1:notaport/db",
    "postgres://u:" .. pw .. "@127.0.0.1:1/db?bogus=1",
    "postgres://u:" .. pw .. "@127.0.0.1:1/db?sslmode=bogus",
    "postgres://u@127.0.0.1:1/db?password=" .. pw,
    "postgres://u:" .. url_encode(pw) .. "@127.0.0.1:1/db",
    "postgres://u:" .. url_encode(pw) .. "@no-such-host.invalid/db",
    "postgres://u:" .. url_encode(pw),
    "postgres://u:" .. pw:gsub("@", "") .. "/db",
    "postgres://:" .. pw .. "@127.0.0.1:1/db",
    "postgres://u:" .. pw .. "@127.0.0.1:1,127.0.0.1:2/db",
    "   postgres://u:" .. pw .. "@127.0.0.1:1/db",
    "postgres://u:" .. url_encode(pw) .. "@127.0.0.1:1/db?password=" .. url_encode(pw) .. "&application_name=x",
    "postgres://u:" .. pw .. "@127.0.0.1:1/db#frag",
    "host=127.0.0.1 port=1 password=" .. pw,
    "host=127.0.0.1 port=1 password=" .. q,
    "host=127.0.0.1 port=1 password=" .. kw_escaped,
    "host=127.0.0.1 port=1 password='" .. pw,
    "password=" .. q .. " host=127.0.0.1 port=notaport",
    "host=127.0.0.1 port=1 password = " .. q,
    "dbname='host=127.0.0.1 port=1 password=" .. pw:gsub("\\", "\\\\"):gsub("'", "\\'") .. "'",
    "host=127.0.0.1 port=1 bogus=x password=" .. q,
    "host=127.0.0.1 port=1 sslpassword=" .. q .. " sslmode=bogus",
    "PASSWORD=" .. pw .. " host=127.0.0.1",
    "host=127.0.0.1 port=1 password=" .. q .. " \\",
    "host=127.0.0.1 port=1 password=" .. q .. " user",
  }
end

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- Runs a shell command; its stdout and stderr together.
local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("*a")
  p:close()
  return out
end

describe("issue 7: no piece of a password in any message", function()
  local function assert_clean(pw, texts, where)
    for _, text in ipairs(texts) do
      for _, frag in ipairs(fragments(pw)) do
        if text:find(frag, 1, true) then
          error(("%s: %q leaks %q of the password in: %s"):format(where, pw, frag, text), 0)
        end
      end
    end
  end

  it("tries at least twenty malformed and hostile conninfo strings per password", function()
    assert.is_true(#conninfos("x") >= 20)
  end)

  for _, pw in ipairs(PASSWORDS) do
    it("keeps " .. pw:sub(1, 2) .. "... out of pg.connect, pg.pool, db.new and pg.redact", function()
      for i, ci in ipairs(conninfos(pw)) do
        local texts, where = {}, ("conninfo #%d"):format(i)
        local function add(v) if v ~= nil then texts[#texts + 1] = tostring(v) end end

        add(pg.redact(ci))
        local conn, err = pg.connect(ci, { connect_timeout = 0.5 })
        assert.is_nil(conn, where)
        add(err); add(err.message)
        assert.is_true(err.kind == "connect" or err.kind == "invalid_input" or err.kind == "timeout", where)

        local logged = {}
        local pool, perr = pg.pool { conninfo = ci, min = 0, max = 1, connect_timeout = 0.5,
          logger = function(_, msg) logged[#logged + 1] = msg end }
        if pool then
          add(pool)
          local res, qerr = pool:query("SELECT 1 AS v")
          assert.is_nil(res, where)
          add(qerr); add(qerr.message)
          add(pool:stats().last_error)
          pool:close()
        else
          add(perr); add(perr.message)
          assert.are.equal("invalid_input", perr.kind, where)
        end

        local svc, serr = db.new { url = ci, pool = { min = 0, max = 1, connect_timeout = 0.5 },
          logger = function(_, msg) logged[#logged + 1] = msg end }
        if svc then
          add(svc); add(svc.conninfo_redacted)
          local h = svc:health()
          add(h.error); add(h.pool and h.pool.last_error)
          local _, oerr = svc:get_user_by_id("00000000-0000-0000-0000-000000000000")
          add(oerr)
          svc:close()
        else
          add(serr); add(serr.message)
        end
        for _, line in ipairs(logged) do add(line) end
        assert_clean(pw, texts, where)
      end
    end)
  end

  it("refuses a raw '@' in the URL's password before libpq reads part of it as the host", function()
    local conn, err = pg.connect("postgres://u:p@ssw0rd@127.0.0.1:1/db")
    assert.is_nil(conn)
    assert.are.equal("invalid_input", err.kind)
    assert.matches("percent%-encode", err.message)
    assert.matches("postgres://u:***@127.0.0.1:1/db", err.message, 1, true)
    assert.is_nil(err.message:find("ssw0rd", 1, true))
  end)

  for _, pw in ipairs(PASSWORDS) do
    it("keeps " .. pw:sub(1, 2) .. "... out of the CLI with DATABASE_URL, DB_PASSWORD and PGPASSWORD", function()
      local cli = VM .. " bin/coderunner-db health"
      local outs = {
        run(("DATABASE_URL=%s %s"):format(shell_quote("postgres://u:" .. pw .. "@127.0.0.1:1/db"), cli)),
        run(("DATABASE_URL=%s %s"):format(shell_quote("postgres://u:" .. url_encode(pw) .. "@127.0.0.1:1/db"), cli)),
        run(("DATABASE_URL=%s %s"):format(shell_quote("host=127.0.0.1 port=1 password=" .. kw_quote(pw)), cli)),
        run(("DATABASE_URL= DB_HOST=127.0.0.1 DB_PORT=1 DB_USER=u DB_PASSWORD=%s %s"):format(shell_quote(pw), cli)),
        run(("DATABASE_URL= DB_HOST=127.0.0.1 DB_PORT=nope DB_PASSWORD=%s %s"):format(shell_quote(pw), cli)),
        run(("DATABASE_URL= DB_HOST= PGHOST=127.0.0.1 PGPORT=1 PGPASSWORD=%s %s"):format(shell_quote(pw), cli)),
        run(("PGHOST=127.0.0.1 PGPORT=1 PGPASSWORD=%s %s -e %s"):format(shell_quote(pw), VM,
          shell_quote("local pg = require 'coderunner.pg' print(select(2, pg.connect(''))) " ..
            "local p = pg.pool{min = 0} print(p, select(2, p:query('select 1')), p:stats().last_error)"))),
      }
      for i, out in ipairs(outs) do
        assert.is_true(#out > 0, "no output from case " .. i)
        assert_clean(pw, { out }, "CLI case " .. i)
      end
    end)
  end
end)
