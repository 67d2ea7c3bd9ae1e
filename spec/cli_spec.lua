-- bin/coderunner-db run as a subprocess (with the VM running the specs), against
-- a real server: output, JSON, exit codes, and concurrent runners.
local cjson = require "cjson"
local pg = require "coderunner.pg"
local server = require "support.server"

local LUA = os.getenv("CODERUNNER_LUA") or "lua5.4"
local VM = LUA:gsub("%W", "")

local function tmpdir()
  local path = os.tmpname()
  os.remove(path)
  assert(os.execute("mkdir -p '" .. path .. "'"))
  return path
end

local function write(path, text)
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
end

local function slurp(path)
  local f = io.open(path, "rb")
  if not f then return "" end
  local s = f:read("*a")
  f:close()
  return s
end

local function quote(s)
  return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- Runs `coderunner-db <args>`; returns exit code, stdout, stderr.
local function run(args, env)
  local errfile = os.tmpname()
  local p = assert(io.popen(("%s %s bin/coderunner-db %s 2>%s; echo \"__rc=$?\""):format(env or "", LUA, args,
    errfile)))
  local out = p:read("*a")
  p:close()
  local rc = tonumber(out:match("__rc=(%d+)%s*$"))
  out = out:gsub("__rc=%d+%s*$", "")
  local err = slurp(errfile)
  os.remove(errfile)
  return rc, out, err
end

local function json(out)
  local ok, v = pcall(cjson.decode, out)
  assert(ok, "not JSON: " .. out)
  return v
end

describe("coderunner-db", function()
  it("--help lists the commands and exits 0, for every command", function()
    local rc, out = run("--help")
    assert.equal(0, rc)
    assert.matches("Usage: coderunner%-db", out)
    assert.matches("migrate", out)
    assert.matches("%-%-url", out)
    rc, out = run("migrate --help")
    assert.equal(0, rc)
    for _, sub in ipairs { "up", "down", "status", "validate", "create" } do assert.matches(sub, out) end
    rc, out = run("migrate status --help")
    assert.equal(0, rc)
    assert.matches("%-%-exit%-code", out)
    rc, out = run("migrate up --help")
    assert.equal(0, rc)
    assert.matches("%-%-dry%-run", out)
  end)

  it("exits 2 on a usage error, with JSON on stdout when asked", function()
    local rc, out, err = run("migrate up --to abc")
    assert.equal(2, rc)
    assert.equal("", out)
    assert.matches("whole number", err)
    rc, out, err = run("frobnicate")
    assert.equal("", out)
    assert.equal(2, rc)
    assert.matches("unknown command 'frobnicate'", err)
    rc, out = run("--json migrate down --steps")
    assert.equal(2, rc)
    local v = json(out)
    assert.is_false(v.ok)
    assert.equal("usage", v.error.kind)
  end)

  it("exits 1 when it cannot connect, and never prints the password", function()
    local rc, out, err = run("migrate status --url " .. quote("postgres://admin:s3cret-pw@127.0.0.1:1/nowhere"))
    assert.equal(1, rc)
    assert.equal("", out)
    assert.matches("could not connect to postgres://admin:%*%*%*@127%.0%.0%.1:1/nowhere", err)
    assert.is_nil(err:find("s3cret", 1, true))
    rc, out, err = run("--json migrate up", "DATABASE_URL=" .. quote("host=127.0.0.1 port=1 password=s3cret-pw"))
    assert.equal(1, rc)
    assert.equal("connect", json(out).error.kind)
    assert.is_nil(out:find("s3cret", 1, true))
    assert.is_nil(err:find("s3cret", 1, true))
  end)
end)

describe("coderunner-db migrate", function()
  local url, dir, conn
  setup(function()
    url = server.fresh_database("cr_cli_" .. VM)
    conn = assert(pg.connect(url))
    dir = tmpdir()
    assert(os.execute("cp migrations/*.sql " .. quote(dir)))
  end)
  teardown(function()
    conn:close()
    os.execute("rm -rf " .. quote(dir))
  end)

  local function migrate_cmd(rest)
    return ("--url %s migrate --dir %s %s"):format(quote(url), quote(dir), rest)
  end

  it("status --exit-code exits 3 while anything is pending", function()
    local rc, out = run(migrate_cmd("status --exit-code"))
    assert.equal(3, rc)
    assert.matches("VERSION%s+NAME%s+STATE", out)
    assert.matches("001%s+initial_schema%s+pending", out)
    assert.matches("002%s+deployment_status_notify%s+pending", out)
    assert.matches("0 applied, 2 pending", out)
  end)

  it("up --dry-run prints what would run and changes nothing", function()
    local rc, out = run(migrate_cmd("up --dry-run"))
    assert.equal(0, rc)
    assert.matches("would apply 001 initial_schema %(in a transaction%)", out)
    assert.matches("CREATE TABLE users", out)
    assert.matches("nothing was changed", out)
    assert.is_false(assert(conn:query("select to_regclass('users') is not null as p"))[1].p)
    assert.is_false(assert(conn:query("select to_regclass('schema_migrations') is not null as p"))[1].p)
  end)

  it("up prints one line per migration with its duration, without colour off a terminal", function()
    local rc, out = run(migrate_cmd("up"))
    assert.equal(0, rc)
    assert.matches("applied%s+001 initial_schema%s+%d+%.%d ms\n", out)
    assert.matches("applied%s+002 deployment_status_notify%s+%d+%.%d ms\n", out)
    assert.matches("2 migrations applied; current version 002", out)
    assert.is_nil(out:find("\27[", 1, true))
    rc, out = run(migrate_cmd("up"))
    assert.equal(0, rc)
    assert.matches("nothing to apply; current version 002", out)
  end)

  it("status --json and --exit-code when all is applied", function()
    local rc, out = run(migrate_cmd("status --exit-code --json"))
    assert.equal(0, rc)
    local v = json(out)
    assert.is_true(v.ok)
    assert.equal(2, v.current)
    assert.equal(2, v.applied)
    assert.equal("applied", v.migrations[1].state)
    assert.equal(64, #v.migrations[1].checksum)
    rc, out = run(migrate_cmd("status"))
    assert.equal(0, rc)
    assert.matches("001%s+initial_schema%s+applied%s+%d%d%d%d%-%d%d%-%d%d", out)
  end)

  it("create NAME makes the next file, and status shows it pending (exit 3)", function()
    local rc, out = run(migrate_cmd("--json create add_avatars"))
    assert.equal(0, rc)
    local v = json(out)
    assert.equal(3, v.version)
    assert.equal(dir .. "/003_add_avatars.sql", v.file)
    write(v.file, "-- migrate:up\nalter table users add column avatar text;\n"
      .. "-- migrate:down\nalter table users drop column avatar;\n")
    rc = run(migrate_cmd("status --exit-code"))
    assert.equal(3, rc)
    rc = run(migrate_cmd("create"))
    assert.equal(2, rc)
  end)

  it("up --json, down --json, and up --to", function()
    local rc, out = run(migrate_cmd("up --json"))
    assert.equal(0, rc)
    local v = json(out)
    assert.equal(1, #v.applied)
    assert.equal(3, v.applied[1].version)
    assert.is_number(v.applied[1].duration_ms)
    rc, out = run(migrate_cmd("down --json --dry-run"))
    assert.equal(0, rc)
    assert.is_true(json(out).dry_run)
    rc, out = run(migrate_cmd("down --json"))
    assert.equal(0, rc)
    v = json(out)
    assert.equal(3, v.reverted[1].version)
    assert.equal(2, v.current)
    rc, out = run(migrate_cmd("up --to 3"))
    assert.equal(0, rc)
    assert.matches("applied%s+003 add_avatars", out)
    rc, out = run(migrate_cmd("--json up"))
    assert.equal(0, rc)
    assert.equal("[]", out:match('"applied":(%b[])'))
  end)

  it("validate exits 1 and lists the changed file; status --exit-code exits 3", function()
    local rc, out = run(migrate_cmd("validate"))
    assert.equal(0, rc)
    assert.matches("ok: 3 migration files checked", out)
    local path = dir .. "/003_add_avatars.sql"
    write(path, slurp(path) .. "-- edited after the fact\n")
    local err
    rc, out, err = run(migrate_cmd("validate"))
    assert.equal(1, rc)
    assert.equal("", out)
    assert.matches("003_add_avatars.sql changed since it was applied", err)
    rc, out = run(migrate_cmd("validate --json"))
    assert.equal(1, rc)
    local v = json(out)
    assert.equal("changed", v.problems[1].problem)
    rc = run(migrate_cmd("status --exit-code"))
    assert.equal(3, rc)
    rc, out, err = run(migrate_cmd("up"))
    assert.equal(1, rc)
    assert.equal("", out)
    assert.matches("003_add_avatars.sql", err)
  end)

  it("colours its output on a terminal only, and not with --no-color or --json", function()
    -- script(1) gives the command a pseudo-terminal as its stdout.
    local function on_tty(args)
      local p = assert(io.popen(("script -qec %s /dev/null"):format(quote(LUA .. " bin/coderunner-db " .. args))))
      local out = p:read("*a")
      p:close()
      return out
    end
    local out = on_tty(migrate_cmd("status"))
    assert.matches("\27%[32mapplied", out)
    assert.matches("\27%[1mVERSION", out)
    out = on_tty("--no-color " .. migrate_cmd("status"))
    assert.matches("applied", out)
    assert.is_nil(out:find("\27[", 1, true))
    out = on_tty(migrate_cmd("status --json"))
    assert.matches('"ok":true', out)
    assert.is_nil(out:find("\27[", 1, true))
  end)

  it("takes the connection from DATABASE_URL when --url is absent", function()
    local rc, out = run(("migrate --dir %s status --json"):format(quote(dir)), "DATABASE_URL=" .. quote(url))
    assert.equal(0, rc)
    assert.equal(3, json(out).current)
  end)
end)

describe("coderunner-db watch", function()
  local url, conn
  setup(function()
    url = server.fresh_database("cr_cli_watch_" .. VM)
    conn = assert(pg.connect(url))
    assert(require("coderunner.migrate").up(conn, { dir = "migrations" }))
  end)
  teardown(function() conn:close() end)

  it("prints each committed deployment status change, as text and as JSON", function()
    local user = assert(conn:query("insert into users (email, password_hash) values ('w@example.com', 'h') "
      .. "returning id"))[1]
    local project = assert(conn:query("insert into projects (user_id, name) values ($1, 'p') returning id",
      user.id))[1]
    local d = assert(conn:query("insert into deployments (project_id, runtime_type) values ($1, 'node') "
      .. "returning id", project.id))[1]
    local function watching()
      return server.eventually(function()
        return assert(conn:query("select count(*)::int as n from pg_stat_activity "
          .. "where query like 'LISTEN %deployment_status%' and datname = current_database()"))[1].n > 0
      end, 10)
    end
    for _, mode in ipairs { "json", "text" } do
      local outfile = os.tmpname()
      local p = assert(io.popen(("%s bin/coderunner-db --url %s %s watch --count 2 --timeout 10 >%s 2>&1")
        :format(LUA, quote(url), mode == "json" and "--json" or "", outfile), "w"))
      assert.is_true(watching())
      local from, to = mode == "json" and "pending" or "deploying", mode == "json" and "building" or "running"
      assert(conn:query("update deployments set status = $2::deployment_status where id = $1", d.id, to))
      assert(conn:query("update deployments set status = 'failed' where id = $1", d.id))
      assert(conn:query("update deployments set status = 'pending' where id = $1", d.id))
      p:close()
      local out = slurp(outfile)
      os.remove(outfile)
      if mode == "json" then
        local lines = {}
        for line in out:gmatch("[^\n]+") do lines[#lines + 1] = json(line) end
        assert.equal(2, #lines)
        assert.same({ channel = "deployment_status", id = d.id, project_id = project.id,
          old_status = from, new_status = to }, lines[1])
        assert.equal("failed", lines[2].new_status)
        assert(conn:query("update deployments set status = 'deploying' where id = $1", d.id))
      else
        assert.matches("watching channel deployment_status", out)
        assert.matches(("deployment %s %%(project %s%%): deploying %%-> running"):format(d.id:gsub("%-", "%%-"),
          project.id:gsub("%-", "%%-")), out)
        assert.matches("running %-> failed", out)
      end
    end
    -- --timeout without a change: exit 0
    local rc = run(("--url %s watch --timeout 0.2"):format(quote(url)))
    assert.equal(0, rc)
  end)
end)

describe("coderunner-db migrate: four runners started at once", function()
  local url, dir, conn
  setup(function()
    url = server.fresh_database("cr_cli_race_" .. VM)
    conn = assert(pg.connect(url))
    dir = tmpdir()
    write(dir .. "/001_runs.sql", "-- migrate:up\n"
      .. "create table runs (version int, backend int default pg_backend_pid());\n"
      .. "insert into runs (version) values (1);\nselect pg_sleep(0.3);\n")
    write(dir .. "/002_items.sql", "-- migrate:up\ncreate table items (code int);\n"
      .. "insert into items select g from generate_series(1, 1000) g;\ninsert into runs (version) values (2);\n")
    write(dir .. "/003_index.sql", "-- migrate:up transaction:false\ncreate index concurrently items_code_idx "
      .. "on items (code);\n")
    write(dir .. "/004_done.sql", "-- migrate:up\ninsert into runs (version) values (4);\nselect pg_sleep(0.2);\n")
  end)
  teardown(function()
    conn:close()
    os.execute("rm -rf " .. quote(dir))
  end)

  it("applies each migration exactly once; every runner succeeds", function()
    local out = {}
    local parts = {}
    for i = 1, 4 do
      out[i] = os.tmpname()
      parts[i] = ("(%s bin/coderunner-db --json --url %s migrate --dir %s up >%s 2>%s.err; echo $? >%s.rc) &")
        :format(LUA, quote(url), quote(dir), out[i], out[i], out[i])
    end
    assert(os.execute(table.concat(parts, " ") .. " wait"))
    local applied = {}
    for i = 1, 4 do
      assert.equal("0", (slurp(out[i] .. ".rc"):gsub("%s", "")), slurp(out[i] .. ".err"))
      local v = json(slurp(out[i]))
      assert.is_true(v.ok)
      assert.equal(4, v.current)
      for _, m in ipairs(v.applied) do applied[#applied + 1] = m.version end
      os.remove(out[i]); os.remove(out[i] .. ".rc"); os.remove(out[i] .. ".err")
    end
    table.sort(applied)
    assert.same({ 1, 2, 3, 4 }, applied)
    local rows = assert(conn:query("select version from runs order by version"))
    assert.same({ 1, 2, 4 }, { rows[1].version, rows[2].version, rows[3].version })
    assert.equal(3, #rows)
    rows = assert(conn:query("select version::int as v from schema_migrations order by version"))
    assert.equal(4, #rows)
    rows = assert(conn:query("select indisvalid from pg_index where indexrelid = 'items_code_idx'::regclass"))
    assert.is_true(rows[1].indisvalid)
  end)
end)
