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
        assert.is_true(lines[1].ok)
        assert.equal("watch", lines[1].command)
        lines[1].ok, lines[1].command = nil, nil
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

describe("coderunner-db conventions", function()
  it("--version prints the version and exits 0", function()
    local rc, out = run("--version")
    assert.equal(0, rc)
    assert.matches("^coderunner%-db " .. pg.version:gsub("%.", "%%.") .. " %(libpq %d+", out)
    rc, out = run("--help")
    assert.equal(0, rc)
    assert.matches("%-%-version", out)
  end)

  it("a usage error names the command and the option, with that command's usage", function()
    local rc, out, err = run("migrate down --steps abc")
    assert.equal(2, rc)
    assert.equal("", out)
    assert.matches("Usage: coderunner%-db migrate down", err)
    assert.matches("coderunner-db migrate down: --steps: a whole number >= 1 is expected, got 'abc'", err, 1, true)
    -- a negative number is a bad value, not an unknown option
    rc, out, err = run("migrate down --steps -1")
    assert.equal(2, rc)
    assert.equal("", out)
    assert.is_nil(err:find("unknown option", 1, true))
    assert.matches("coderunner-db migrate down: --steps: a whole number >= 1 is expected, got '-1'", err, 1, true)
    rc, out, err = run("migrate down --steps 0")
    assert.equal(2, rc)
    assert.equal("", out)
    assert.matches("got '0'", err, 1, true)
    rc, out, err = run("migrate --lock-timeout soon status")
    assert.equal(2, rc)
    assert.equal("", out)
    assert.matches("coderunner-db migrate status: --lock-timeout: a number of seconds >= 0 is expected, got 'soon'",
      err, 1, true)
    rc, out, err = run("health --bogus")
    assert.equal(2, rc)
    assert.equal("", out)
    assert.matches("coderunner-db health: unknown option '--bogus'", err, 1, true)
    assert.matches("Usage: coderunner%-db health", err)
  end)

  it("every command fails with one JSON shape: ok, command, error {kind, message}", function()
    local down = "host=127.0.0.1 port=1 connect_timeout=1"
    local cases = {
      { "--json migrate down --steps abc", "migrate down", "usage", 2 },
      { "--json migrate status --url " .. quote(down), "migrate status", "connect", 1 },
      { "--json migrate --url " .. quote(down), "migrate up", "connect", 1 },
      { "--json health --url " .. quote(down), "health", "connect", 1 },
      { "--json stats --url " .. quote(down), "stats", "connect", 1 },
      { "--json health --url " .. quote("mysql://root:pw@db/app"), "health", "invalid_input", 2 },
    }
    for _, c in ipairs(cases) do
      local rc, out = run(c[1])
      assert.equal(c[4], rc, c[1])
      local v = json(out)
      assert.is_false(v.ok, c[1])
      assert.equal(c[2], v.command, c[1])
      assert.equal(c[3], v.error.kind, c[1])
      assert.is_string(v.error.message, c[1])
      -- the message alone, as every command prints it (not "kind: message")
      assert.is_nil(v.error.message:find("^" .. c[3] .. ": "), c[1] .. ": " .. v.error.message)
    end
  end)

  it("prints numbers as people read them", function()
    local cli = require "coderunner.cli"
    local v = json(cli.encode_json({ x = 0.1 + 0.2, n = 3, big = 2 ^ 40, e = cli.array({}), list = { 1.5, 2 } }))
    assert.equal(0.3, v.x)
    local text = cli.encode_json({ x = 0.1 + 0.2, latency_ms = 0.518, e = cli.array({}) })
    assert.matches('"x":0.3[,}]', text)
    assert.matches('"latency_ms":0.518[,}]', text)
    assert.matches('"e":%[%]', text)
    assert.equal(3, v.n)
    assert.equal(2 ^ 40, v.big)
  end)

  it("a --url that is not a PostgreSQL URL says so, without its password", function()
    for _, cmd in ipairs { "health", "stats", "migrate status" } do
      local rc, out, err = run(cmd .. " --url " .. quote("mysql://root:hunter2@db.example.com/app"))
      assert.equal(2, rc, cmd)
      assert.equal("", out)
      assert.matches("not a PostgreSQL URL (it starts with mysql://)", err, 1, true)
      assert.is_nil(err:find("hunter2", 1, true), cmd)
    end
  end)
end)

describe("coderunner-db health --json", function()
  it("prints latency_ms with at most 3 decimals, ok and the command", function()
    local rc, out = run("--json health")
    assert.equal(0, rc, out)
    local latency = out:match('"latency_ms":([%d%.e%-]+)')
    assert.truthy(latency, out)
    assert.is_nil(latency:match("%.%d%d%d%d"), latency)
    local v = json(out)
    assert.is_true(v.ok)
    assert.equal("health", v.command)
  end)
end)

describe("coderunner-db migrate: progress", function()
  local url, dir
  setup(function()
    url = server.fresh_database("cr_cli_progress_" .. VM)
    dir = tmpdir()
    write(dir .. "/001_quick.sql", "-- migrate:up\ncreate table a (id int);\n-- migrate:down\ndrop table a;\n")
    write(dir .. "/002_slow.sql", "-- migrate:up\nselect pg_sleep(0.8);\ncreate table b (id int);\n"
      .. "-- migrate:down\ndrop table b;\n")
    write(dir .. "/003_last.sql", "-- migrate:up\ncreate table c (id int);\n-- migrate:down\ndrop table c;\n")
  end)
  teardown(function() os.execute("rm -rf " .. quote(dir)) end)

  -- Runs the command with stdout a pipe, noting when each line arrives.
  local function piped(args)
    local p = assert(io.popen(("%s bin/coderunner-db --url %s migrate --dir %s %s 2>&1"):format(LUA, quote(url),
      quote(dir), args)))
    local lines = {}
    for line in p:lines() do lines[#lines + 1] = { text = line, at = pg.monotonic() } end
    p:close()
    return lines
  end

  local function find(lines, pattern)
    for i, l in ipairs(lines) do
      if l.text:match(pattern) then return i, l end
    end
    error("no line matches " .. pattern)
  end

  it("prints each migration's line when it starts and when it ends, as it happens, into a pipe", function()
    local lines = piped("up")
    local order = {}
    for _, pat in ipairs { "^applying%s+001 quick %.%.%.$", "^applied%s+001 quick", "^applying%s+002 slow %.%.%.$",
                           "^applied%s+002 slow%s+%d+%.%d ms$", "^applying%s+003 last", "^applied%s+003 last",
                           "^3 migrations applied; current version 003$" } do
      order[#order + 1] = (find(lines, pat))
    end
    for i = 2, #order do assert.is_true(order[i] > order[i - 1], "line order") end
    -- the start of the slow one reached the pipe while it ran, not at the end
    local _, started = find(lines, "^applying%s+002")
    local _, ended = find(lines, "^applied%s+002")
    assert.is_true(ended.at - started.at >= 0.5, ("%.3f s between the lines"):format(ended.at - started.at))
    lines = piped("down --steps 2")
    local a = find(lines, "^reverting%s+003 last %.%.%.$")
    local b = find(lines, "^reverted%s+003 last")
    local c = find(lines, "^reverting%s+002 slow")
    assert.is_true(a < b and b < c)
  end)

  it("the reporter hook prints counts at most once per interval, and always the last", function()
    local script = [[
      local t = 0
      local common = require("coderunner.cli").new_common(false)
      local r = common.reporter({ interval = 1, clock = function() return t end })
      r.start("loading users")
      for done = 0, 5000, 500 do t = done / 1000; r.update("users", done, 5000, "rows") end
      r.finish("loaded users")
    ]]
    local path = os.tmpname()
    write(path, script)
    local p = assert(io.popen(("%s %s 2>&1 | cat"):format(LUA, path)))
    local out = p:read("*a")
    p:close()
    os.remove(path)
    assert.equal("loading users ...\nusers: 0 of 5000 rows (0%)\nusers: 1000 of 5000 rows (20%)\n"
      .. "users: 2000 of 5000 rows (40%)\nusers: 3000 of 5000 rows (60%)\nusers: 4000 of 5000 rows (80%)\n"
      .. "users: 5000 of 5000 rows (100%)\nloaded users\n", out)
  end)
end)

describe("coderunner-db: the migrations directory", function()
  local url, elsewhere, root
  setup(function()
    url = server.fresh_database("cr_cli_dirs_" .. VM)
    elsewhere = tmpdir()
    local p = assert(io.popen("pwd"))
    root = p:read("*l")
    p:close()
  end)
  teardown(function() os.execute("rm -rf " .. quote(elsewhere)) end)

  local function run_in(cwd, bin, args, env)
    local p = assert(io.popen(("cd %s && %s %s %s %s 2>&1; echo \"__rc=$?\""):format(quote(cwd), env or "", LUA,
      quote(bin), args)))
    local out = p:read("*a")
    p:close()
    return tonumber(out:match("__rc=(%d+)%s*$")), (out:gsub("__rc=%d+%s*$", ""))
  end

  local function exists(path)
    local f = io.open(path, "r")
    if f then f:close() end
    return f ~= nil
  end

  it("from another folder, a checkout's CLI finds the checkout's migrations/", function()
    local rc, out = run_in(elsewhere, root .. "/bin/coderunner-db", "--json --url " .. quote(url) .. " migrate status",
      "CODERUNNER_MIGRATIONS=")
    assert.equal(0, rc, out)
    local v = json(out)
    assert.equal(root .. "/migrations/001_initial_schema.sql", v.migrations[1].file)
    assert.is_false(exists(elsewhere .. "/migrations"))
  end)

  it("installed, it finds <luadir>/coderunner/migrations; create never makes a folder where it runs", function()
    local tree = elsewhere .. "/tree"
    local vm_dir = tree .. "/share/lua/" .. VM
    assert(os.execute(("mkdir -p %s/coderunner %s/bin && cp -R lua/coderunner/. %s/coderunner/ && "
      .. "cp bin/coderunner-db %s/bin/ && mkdir -p %s/coderunner/migrations && cp migrations/*.sql %s/coderunner/migrations/")
      :format(quote(vm_dir), quote(tree), quote(vm_dir), quote(tree), quote(vm_dir), quote(vm_dir))))
    local cwd = elsewhere .. "/work"
    assert(os.execute("mkdir -p " .. quote(cwd)))
    local env = ("CODERUNNER_MIGRATIONS= LUA_PATH=%s LUA_CPATH=%s"):format(
      quote(vm_dir .. "/?.lua;" .. vm_dir .. "/?/init.lua;;"), quote(root .. "/build/" .. LUA .. "/?.so;;"))
    local rc, out = run_in(cwd, tree .. "/bin/coderunner-db", "--json --url " .. quote(url) .. " migrate status", env)
    assert.equal(0, rc, out)
    assert.equal(vm_dir .. "/coderunner/migrations/001_initial_schema.sql", json(out).migrations[1].file)
    rc, out = run_in(cwd, tree .. "/bin/coderunner-db", "--json migrate create add_x", env)
    assert.equal(0, rc, out)
    assert.equal(vm_dir .. "/coderunner/migrations/003_add_x.sql", json(out).file)
    assert.is_false(exists(cwd .. "/migrations"))
    -- $CODERUNNER_MIGRATIONS comes before the installed folder, --dir before both
    local own = elsewhere .. "/own"
    rc, out = run_in(cwd, tree .. "/bin/coderunner-db", "--json migrate create y",
      env:gsub("CODERUNNER_MIGRATIONS=", "CODERUNNER_MIGRATIONS=" .. quote(own)))
    assert.equal(0, rc, out)
    assert.equal(own .. "/001_y.sql", json(out).file)
    rc, out = run_in(cwd, tree .. "/bin/coderunner-db", "--json migrate --dir " .. quote(own .. "2") .. " create z",
      env:gsub("CODERUNNER_MIGRATIONS=", "CODERUNNER_MIGRATIONS=" .. quote(own)))
    assert.equal(0, rc, out)
    assert.equal(own .. "2/001_z.sql", json(out).file)
    -- with no migrations installed anywhere, it says where it looked and makes nothing
    assert(os.execute("rm -rf " .. quote(vm_dir .. "/coderunner/migrations")))
    rc, out = run_in(cwd, tree .. "/bin/coderunner-db", "migrate create w", env)
    assert.equal(2, rc, out)
    assert.matches("no migrations directory found (looked in " .. vm_dir .. "/coderunner/migrations", out, 1, true)
    assert.is_false(exists(cwd .. "/migrations"))
  end)
end)
