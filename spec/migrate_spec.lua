-- The migration runner against a real server: each describe-block has its own
-- database and its own temporary migrations directory.
local pg = require "coderunner.pg"
local migrate = require "coderunner.migrate"
local server = require "support.server"

local VM = (os.getenv("CODERUNNER_LUA") or "lua"):gsub("%W", "")

local function tmpdir()
  local path = os.tmpname()
  os.remove(path)
  assert(os.execute("mkdir -p '" .. path .. "'"))
  return path
end

local function write(dir, filename, text)
  local f = assert(io.open(dir .. "/" .. filename, "wb"))
  f:write(text)
  f:close()
end

local function rmdir(dir)
  os.execute("rm -rf '" .. dir .. "'")
end

-- A fresh database and an open connection to it.
local function fresh(name)
  local conn = assert(pg.connect(server.fresh_database("cr_mig_" .. name .. "_" .. VM)))
  return conn
end

local function history(conn, tbl)
  return assert(conn:query("select version::int as version, name, checksum, applied_at::text as applied_at, "
    .. "duration_ms, applied_by from " .. (tbl or "schema_migrations") .. " order by version"))
end

local function exists(conn, relation)
  return assert(conn:query("select to_regclass($1) is not null as present", relation))[1].present
end

local function versions(list)
  local out = {}
  for i, item in ipairs(list) do out[i] = item.version end
  return out
end

local M1 = "-- migrate:up\ncreate table widgets (id int primary key, name text not null);\n"
  .. "-- migrate:down\ndrop table widgets;\n"
local M2 = "-- migrate:up\nalter table widgets add column colour text;\ninsert into widgets values (1, 'one', 'red');\n"
  .. "-- migrate:down\nalter table widgets drop column colour;\ndelete from widgets;\n"
local M3 = "-- migrate:up\ncreate table gadgets (id int);\n-- migrate:down\ndrop table gadgets;\n"

describe("migrate: fresh apply and re-run", function()
  local conn, dir
  setup(function()
    conn = fresh("apply")
    dir = tmpdir()
    write(dir, "001_widgets.sql", M1)
    write(dir, "002_colour.sql", M2)
    write(dir, "003_gadgets.sql", M3)
    write(dir, "README.md", "not a migration")
  end)
  teardown(function() conn:close(); rmdir(dir) end)

  it("applies every migration in version order and records it", function()
    local events = {}
    local runner = assert(migrate.new(conn, { dir = dir, logger = function(_, msg, info)
      events[#events + 1] = { msg = msg, event = info.event, version = info.version }
    end }))
    local report = assert(runner:up())
    assert.same({ 1, 2, 3 }, versions(report.applied))
    assert.equal(3, report.current)
    assert.is_false(report.dry_run)
    for _, item in ipairs(report.applied) do
      assert.is_number(item.duration_ms)
      assert.is_true(item.duration_ms >= 0)
      assert.is_true(item.transaction)
    end
    -- each migration is announced when it starts, then when it is done
    assert.equal("applying", events[1].event)
    assert.equal("applying 001_widgets.sql", events[1].msg)
    assert.equal("applied", events[2].event)
    assert.matches("applied 001_widgets.sql %(%d+%.%d ms%)", events[2].msg)
    local order = {}
    for i, ev in ipairs(events) do order[i] = ev.event .. " " .. ev.version end
    assert.same({ "applying 1", "applied 1", "applying 2", "applied 2", "applying 3", "applied 3" }, order)

    local rows = history(conn)
    assert.equal(3, #rows)
    assert.same({ "widgets", "colour", "gadgets" }, { rows[1].name, rows[2].name, rows[3].name })
    local me = assert(conn:query("select current_user as u"))[1].u
    for _, r in ipairs(rows) do
      assert.matches("^%x+$", r.checksum)
      assert.equal(64, #r.checksum)
      assert.equal(me, r.applied_by)
      assert.truthy(r.applied_at)
    end
    -- The checksum is the SHA-256 of the file.
    local sum = assert(conn:query("select encode(sha256($1), 'hex') as s", pg.bytea(M2)))[1].s
    assert.equal(sum, rows[2].checksum)
    assert.equal("red", assert(conn:query("select colour from widgets where id = 1"))[1].colour)
    assert.is_true(exists(conn, "gadgets"))
  end)

  it("is idempotent: a second run applies nothing and changes nothing", function()
    local before = history(conn)
    local report = assert(migrate.up(conn, { dir = dir }))
    assert.same({}, report.applied)
    assert.equal(3, report.current)
    assert.same(before, history(conn))
  end)

  it("refuses bad options with an error object", function()
    local runner, err = migrate.new(conn, { dir = dir, table = "x; drop table widgets" })
    assert.is_nil(runner)
    assert.equal("invalid_input", err.kind)
    assert.matches("table must be a name", err.message)
    runner, err = migrate.new(conn, { dir = dir, lock_timeout = -1 })
    assert.is_nil(runner)
    assert.matches("lock_timeout", err.message)
    local report
    report, err = assert(migrate.new(conn, { dir = dir })):up({ to = "three" })
    assert.is_nil(report)
    assert.equal("invalid_input", err.kind)
    report, err = assert(migrate.new(conn, { dir = dir })):down({ steps = 0 })
    assert.is_nil(report)
    assert.matches("steps", err.message)
    report, err = migrate.up(conn, { dir = dir .. "/nope" })
    assert.is_nil(report)
    assert.matches("not found", err.message)
    assert.has_error(function() migrate.new(42) end)
  end)

  it("works over a pool too, with a table of one's own", function()
    local pool = assert(pg.pool { conninfo = server.fresh_database("cr_mig_pool_" .. VM), min = 1, max = 2 })
    local report = assert(migrate.up(pool, { dir = dir, table = "public.my_history" }))
    assert.same({ 1, 2, 3 }, versions(report.applied))
    local rows = assert(pool:query("select count(*)::int as n from public.my_history"))
    assert.equal(3, rows[1].n)
    local status = assert(assert(migrate.new(pool, { dir = dir, table = "public.my_history" })):status())
    assert.equal(3, status.applied)
    assert.equal(0, pool:stats().busy)
    pool:close()
  end)

  it("checksums every file in one round trip, however many there are", function()
    local pool = assert(pg.pool { conninfo = server.fresh_database("cr_mig_sums_" .. VM), min = 1, max = 1 })
    local many = tmpdir()
    write(many, "001_a.sql", M1)
    local runner = assert(migrate.new(pool, { dir = many }))
    local function statements_of_status()
      local before = pool:stats().queries
      local report = assert(runner:status())
      return pool:stats().queries - before, report
    end
    local one = statements_of_status()
    write(many, "002_b.sql", M2)
    write(many, "003_c.sql", M3)
    write(many, "004_d.sql", M3:gsub("gadgets", "gizmos"))
    local four, report = statements_of_status()
    assert.equal(one, four)
    assert.equal(4, report.pending)
    -- the sums are the server's sha256 of each file, in file order
    for i, text in ipairs { M1, M2, M3, (M3:gsub("gadgets", "gizmos")) } do
      local sum = assert(pool:query("select encode(sha256($1), 'hex') as s", pg.bytea(text)))[1].s
      assert.equal(sum, report.migrations[i].checksum)
    end
    pool:close()
    rmdir(many)
  end)
end)

describe("migrate: up --to, down and up again, dry run", function()
  local conn, dir, runner
  setup(function()
    conn = fresh("downup")
    dir = tmpdir()
    write(dir, "001_widgets.sql", M1)
    write(dir, "002_colour.sql", M2)
    write(dir, "003_gadgets.sql", M3)
    runner = assert(migrate.new(conn, { dir = dir }))
  end)
  teardown(function() conn:close(); rmdir(dir) end)

  it("dry run on an empty database changes nothing, not even the history table", function()
    local report = assert(runner:up({ dry_run = true }))
    assert.is_true(report.dry_run)
    assert.same({ 1, 2, 3 }, versions(report.applied))
    assert.matches("create table widgets", report.applied[1].sql)
    assert.is_false(exists(conn, "schema_migrations"))
    assert.is_false(exists(conn, "widgets"))
  end)

  it("stops at --to", function()
    local report = assert(runner:up({ to = 2 }))
    assert.same({ 1, 2 }, versions(report.applied))
    assert.equal(2, #history(conn))
    assert.is_false(exists(conn, "gadgets"))
    local _, err = runner:up({ to = 9 })
    assert.matches("no migration with version 9", err.message)
    _, err = runner:up({ to = 1 })
    assert.matches("older than the current version 2", err.message)
  end)

  it("dry run of down and of up leaves the database as it was", function()
    local before = history(conn)
    local report = assert(runner:down({ steps = 2, dry_run = true }))
    assert.same({ 2, 1 }, versions(report.reverted))
    assert.matches("drop column colour", report.reverted[1].sql)
    report = assert(runner:up({ dry_run = true }))
    assert.same({ 3 }, versions(report.applied))
    assert.same(before, history(conn))
    assert.is_true(exists(conn, "widgets"))
    assert.is_false(exists(conn, "gadgets"))
  end)

  it("reverts the newest migration, then more steps, then applies them again", function()
    assert(runner:up())
    local report = assert(runner:down())
    assert.same({ 3 }, versions(report.reverted))
    assert.equal(2, report.current)
    assert.is_number(report.reverted[1].duration_ms)
    assert.is_false(exists(conn, "gadgets"))
    assert.same({ 1, 2 }, versions(history(conn)))

    report = assert(runner:down({ steps = 5 }))
    assert.same({ 2, 1 }, versions(report.reverted))
    assert.is_nil(report.current)
    assert.is_false(exists(conn, "widgets"))
    assert.equal(0, #history(conn))
    report = assert(runner:down())
    assert.same({}, report.reverted)

    report = assert(runner:up())
    assert.same({ 1, 2, 3 }, versions(report.applied))
    assert.equal("red", assert(conn:query("select colour from widgets"))[1].colour)
  end)

  it("refuses to revert a migration without a down section", function()
    write(dir, "004_oneway.sql", "-- migrate:up\ncreate table oneway (id int);\n")
    assert(runner:up())
    local report, err = runner:down()
    assert.is_nil(report)
    assert.matches("004_oneway.sql: it has no '%-%- migrate:down' section", err.message)
    assert.is_true(exists(conn, "oneway"))
    assert.equal(4, #history(conn))
  end)
end)

describe("migrate: status in every state", function()
  local conn, dir, runner
  setup(function()
    conn = fresh("status")
    dir = tmpdir()
    runner = assert(migrate.new(conn, { dir = dir }))
  end)
  teardown(function() conn:close(); rmdir(dir) end)

  it("reports pending migrations on an empty database without creating anything", function()
    write(dir, "001_widgets.sql", M1)
    write(dir, "003_gadgets.sql", M3)
    local report = assert(runner:status())
    assert.is_nil(report.current)
    assert.equal(2, report.pending)
    assert.equal(0, report.applied)
    assert.same({ "pending", "pending" }, { report.migrations[1].state, report.migrations[2].state })
    assert.is_false(exists(conn, "schema_migrations"))
  end)

  it("reports applied migrations with their time and duration", function()
    assert(runner:up())
    local report = assert(runner:status())
    assert.equal(3, report.current)
    assert.equal(2, report.applied)
    assert.equal(0, report.pending)
    local m = report.migrations[1]
    assert.equal("applied", m.state)
    assert.truthy(m.applied_at)
    assert.is_number(m.duration_ms)
    assert.equal(m.checksum, m.applied_checksum)
  end)

  it("reports changed, missing, pending and out-of-order migrations", function()
    write(dir, "001_widgets.sql", M1 .. "-- an afterthought\n")
    os.remove(dir .. "/003_gadgets.sql")
    write(dir, "002_colour.sql", M2)
    write(dir, "005_later.sql", "-- migrate:up\nselect 1;\n")
    local report = assert(runner:status())
    local states = {}
    for _, m in ipairs(report.migrations) do states[#states + 1] = m.version .. ":" .. m.state end
    assert.same({ "1:changed", "2:pending", "3:missing", "5:pending" }, states)
    assert.is_true(report.migrations[2].out_of_order)
    assert.is_nil(report.migrations[4].out_of_order)
    assert.same({ applied = 0, pending = 2, changed = 1, missing = 1, out_of_order = 1 }, {
      applied = report.applied, pending = report.pending, changed = report.changed, missing = report.missing,
      out_of_order = report.out_of_order })
    assert.are_not.equal(report.migrations[1].checksum, report.migrations[1].applied_checksum)
  end)
end)

describe("migrate: tamper detection and missing files", function()
  local conn, dir, runner
  setup(function()
    conn = fresh("tamper")
    dir = tmpdir()
    write(dir, "001_widgets.sql", M1)
    write(dir, "002_colour.sql", M2)
    runner = assert(migrate.new(conn, { dir = dir }))
    assert(runner:up())
  end)
  teardown(function() conn:close(); rmdir(dir) end)

  it("accepts the same file with CRLF line endings", function()
    write(dir, "001_widgets.sql", (M1:gsub("\n", "\r\n")))
    assert(runner:validate())
    assert.equal(0, #assert(runner:up()).applied)
  end)

  it("refuses to run when an applied file changed, naming it and both checksums", function()
    local recorded = history(conn)[2].checksum
    write(dir, "002_colour.sql", (M2:gsub("'red'", "'blue'")))
    write(dir, "003_gadgets.sql", M3)
    local report, err = runner:up()
    assert.is_nil(report)
    assert.equal("invalid_input", err.kind)
    assert.matches("002_colour.sql", err.message)
    assert.matches(recorded, err.message, 1, true)
    local now = assert(conn:query("select encode(sha256($1), 'hex') as s", pg.bytea((M2:gsub("'red'", "'blue'")))))[1].s
    assert.matches(now, err.message, 1, true)
    assert.matches("restore the file", tostring(err))
    assert.is_false(exists(conn, "gadgets")) -- nothing ran
    assert.equal(2, #history(conn))
    -- down refuses it too
    report, err = runner:down()
    assert.is_nil(report)
    assert.matches("002_colour.sql", err.message)
  end)

  it("validate reports every changed and missing file", function()
    write(dir, "001_widgets.sql", M1 .. "\n-- edited\n")
    local report, err, details = runner:validate()
    assert.is_nil(report)
    assert.matches("2 problems", err.message)
    assert.matches("001_widgets.sql", err.message)
    assert.matches("002_colour.sql", err.message)
    assert.same({ "changed", "changed" }, { details.problems[1].problem, details.problems[2].problem })

    write(dir, "001_widgets.sql", M1)
    write(dir, "002_colour.sql", M2)
    assert(runner:validate())
    os.remove(dir .. "/002_colour.sql")
    report, err, details = runner:validate()
    assert.is_nil(report)
    assert.equal("missing", details.problems[1].problem)
    assert.matches("version 2 %(colour%) is applied but its file is missing", err.message)
  end)

  it("refuses to run when an applied version's file is gone", function()
    os.remove(dir .. "/002_colour.sql")
    local report, err = runner:up()
    assert.is_nil(report)
    assert.matches("missing from .*002_colour.sql", err.message)
    assert.is_false(exists(conn, "gadgets"))
    report, err = runner:down()
    assert.is_nil(report)
    assert.matches("file is missing", err.message)
  end)

  it("validate reports a malformed file", function()
    write(dir, "002_colour.sql", M2)
    write(dir, "004_bad.sql", "create table x (id int);\n-- migrate:up\nselect 1;\n")
    local _, err, details = runner:validate()
    assert.equal("invalid_file", details.problems[1].problem)
    assert.matches("004_bad.sql:1: SQL before the '%-%- migrate:up' marker", err.message)
    local report
    report, err = runner:up()
    assert.is_nil(report)
    assert.matches("004_bad.sql:1:", err.message)
    assert.is_false(exists(conn, "gadgets"))  -- 003 did not run either: files are checked first
    os.remove(dir .. "/004_bad.sql")
    write(dir, "004_bad.sql", "-- migrate:up transaction:maybe\nselect 1;\n")
    _, err = runner:up()
    assert.matches("004_bad.sql:1: unknown option 'transaction:maybe'", err.message)
  end)
end)

describe("migrate: out-of-order versions", function()
  local conn, dir
  setup(function()
    conn = fresh("order")
    dir = tmpdir()
    write(dir, "001_widgets.sql", M1)
    write(dir, "003_gadgets.sql", M3)
    assert(migrate.up(conn, { dir = dir }))
  end)
  teardown(function() conn:close(); rmdir(dir) end)

  it("refuses a pending version older than the newest applied one", function()
    write(dir, "002_colour.sql", M2)
    local report, err = migrate.up(conn, { dir = dir })
    assert.is_nil(report)
    assert.matches("older than the newest applied version 3: 002_colour.sql", err.message)
    assert.is_false(assert(conn:query([[select count(*) > 0 as has from information_schema.columns
      where table_name = 'widgets' and column_name = 'colour']]))[1].has)
    local _, verr = assert(migrate.new(conn, { dir = dir })):validate()
    assert.matches("002_colour.sql is pending but older", verr.message)
  end)

  it("applies it when allowed explicitly", function()
    local report = assert(migrate.up(conn, { dir = dir, allow_out_of_order = true }))
    assert.same({ 2 }, versions(report.applied))
    assert.same({ 1, 2, 3 }, versions(history(conn)))
  end)

  it("refuses two files with the same version", function()
    write(dir, "0002_again.sql", M2)
    local _, err = migrate.up(conn, { dir = dir })
    assert.matches("two migrations have version 2", err.message)
  end)
end)

describe("migrate: a failing migration", function()
  local conn, dir
  setup(function()
    conn = fresh("fail")
    dir = tmpdir()
    write(dir, "001_widgets.sql", M1)
    write(dir, "002_broken.sql", table.concat({
      "-- Creates a table, fills it, then fails.", -- 1
      "-- migrate:up",                             -- 2
      "create table broken (id int);",             -- 3
      "insert into broken values (1);",            -- 4
      "select *",                                  -- 5
      "  from no_such_table;",                     -- 6
      "-- migrate:down",                           -- 7
      "drop table broken;",                        -- 8
    }, "\n"))
    write(dir, "003_gadgets.sql", M3)
  end)
  teardown(function() conn:close(); rmdir(dir) end)

  it("is rolled back and not recorded; later ones do not run; the error names file and line", function()
    local applied = {}
    local report, err = migrate.up(conn, { dir = dir, logger = function(_, _, info)
      if info.event == "applied" then applied[#applied + 1] = info.version end
    end })
    assert.is_nil(report)
    assert.equal("server", err.kind)
    assert.equal("42P01", err.sqlstate)
    assert.matches(dir .. "/002_broken.sql:6: ", err.message, 1, true)
    assert.equal(dir .. "/002_broken.sql", err.file)
    assert.equal(6, err.line)
    assert.matches("002_broken.sql:6: .*no_such_table", tostring(err))
    assert.matches("no_such_table", err.message)
    assert.matches("rolled back", err.message)
    assert.same({ 1 }, applied)
    assert.is_true(exists(conn, "widgets"))
    assert.is_false(exists(conn, "broken"))
    assert.is_false(exists(conn, "gadgets"))
    assert.same({ 1 }, versions(history(conn)))
  end)

  it("runs once fixed, from where it stopped", function()
    write(dir, "002_broken.sql", "-- migrate:up\ncreate table broken (id int);\n-- migrate:down\ndrop table broken;\n")
    local report = assert(migrate.up(conn, { dir = dir }))
    assert.same({ 2, 3 }, versions(report.applied))
  end)
end)

describe("migrate: migrations outside a transaction", function()
  local conn, dir
  setup(function()
    conn = fresh("notx")
    dir = tmpdir()
    write(dir, "001_items.sql", "-- migrate:up\ncreate table items (code int);\n"
      .. "insert into items values (1), (1), (2);\n-- migrate:down\ndrop table items;\n")
  end)
  teardown(function() conn:close(); rmdir(dir) end)

  local function invalid_indexes()
    return assert(conn:query("select indexrelid::regclass::text as name from pg_index where not indisvalid"))
  end

  it("cannot build an index concurrently inside a transaction", function()
    write(dir, "002_index.sql", "-- migrate:up\ncreate index concurrently items_code_idx on items (code);\n")
    local _, err = migrate.up(conn, { dir = dir })
    assert.equal("25001", err.sqlstate)
    assert.matches("002_index.sql:2:", err.message)
    assert.same({ 1 }, versions(history(conn)))
    os.remove(dir .. "/002_index.sql")
  end)

  it("a failed concurrent index build leaves no invalid index behind and is not recorded", function()
    write(dir, "002_unique.sql", "-- migrate:up transaction:false\n"
      .. "create unique index concurrently items_code_key on items (code);\n"
      .. "-- migrate:down transaction:false\ndrop index concurrently items_code_key;\n")
    local report, err = migrate.up(conn, { dir = dir })
    assert.is_nil(report)
    assert.equal("23505", err.sqlstate)
    assert.matches("002_unique.sql:2:", err.message)
    assert.matches("dropped the invalid index items_code_key", err.message)
    assert.equal(0, #invalid_indexes())
    assert.is_false(exists(conn, "items_code_key"))
    assert.same({ 1 }, versions(history(conn)))
  end)

  it("applies once the data allows it, and reverts outside a transaction too", function()
    assert(conn:exec("delete from items where code = 1"))
    local report = assert(migrate.up(conn, { dir = dir }))
    assert.same({ 2 }, versions(report.applied))
    assert.is_false(report.applied[1].transaction)
    assert.is_true(exists(conn, "items_code_key"))
    assert.equal(0, #invalid_indexes())
    report = assert(assert(migrate.new(conn, { dir = dir })):down())
    assert.same({ 2 }, versions(report.reverted))
    assert.is_false(exists(conn, "items_code_key"))
  end)
end)

describe("migrate: the advisory lock", function()
  local conn, other, dir, conninfo
  setup(function()
    conninfo = server.fresh_database("cr_mig_lock_" .. VM)
    conn = assert(pg.connect(conninfo))
    other = assert(pg.connect(conninfo))
    dir = tmpdir()
    write(dir, "001_widgets.sql", M1)
  end)
  teardown(function() conn:close(); other:close(); rmdir(dir) end)

  it("times out with a clear error naming the holder", function()
    local ns, key = migrate.lock_keys("schema_migrations")
    assert(other:query("select pg_advisory_lock($1::int4, $2::int4)", tostring(ns), tostring(key)))
    local pid = assert(other:query("select pg_backend_pid() as pid"))[1].pid
    local started = pg.monotonic()
    local report, err = migrate.up(conn, { dir = dir, lock_timeout = 1, poll_interval = 0.1 })
    local waited = pg.monotonic() - started
    assert.is_true(waited >= 1 and waited < 2, "waited " .. waited .. " s")
    assert.is_nil(report)
    assert.equal("timeout", err.kind)
    assert.matches("could not take the migration lock within 1 s", err.message)
    assert.matches("pid " .. pid, err.message, 1, true)
    assert.is_false(exists(conn, "schema_migrations"))
    assert(other:query("select pg_advisory_unlock($1::int4, $2::int4)", tostring(ns), tostring(key)))
  end)

  it("waits holding no snapshot and no transaction, then runs when the lock is free", function()
    local ns, key = migrate.lock_keys()
    assert(other:query("select pg_advisory_lock($1::int4, $2::int4)", tostring(ns), tostring(key)))
    local pid = assert(conn:query("select pg_backend_pid() as pid"))[1].pid
    local seen = {}
    local report = assert(migrate.up(conn, { dir = dir, poll_interval = 0.05, sleep = function()
      -- Between two attempts, the waiting runner's session, seen from elsewhere:
      local rows = assert(other:query("select state, backend_xmin::text as xmin, backend_xid::text as xid "
        .. "from pg_stat_activity where pid = $1", pid))
      seen[#seen + 1] = rows[1]
      assert(other:query("select pg_advisory_unlock($1::int4, $2::int4)", tostring(ns), tostring(key)))
    end }))
    assert.equal(1, #seen)
    assert.equal("idle", seen[1].state)
    assert.is_nil(seen[1].xmin)
    assert.is_nil(seen[1].xid)
    assert.same({ 1 }, versions(report.applied))
    -- and the runner gave the lock back
    local free = assert(other:query("select pg_try_advisory_lock($1::int4, $2::int4) as ok", tostring(ns),
      tostring(key)))[1].ok
    assert.is_true(free)
    assert(other:query("select pg_advisory_unlock($1::int4, $2::int4)", tostring(ns), tostring(key)))
  end)
end)

describe("migrate.create", function()
  local dir
  setup(function() dir = tmpdir() end)
  teardown(function() rmdir(dir) end)

  it("creates the next numbered file with an up/down template", function()
    local report = assert(migrate.create(dir, "Add user avatars!"))
    assert.equal(1, report.version)
    assert.equal("add_user_avatars", report.name)
    assert.equal(dir .. "/001_add_user_avatars.sql", report.file)
    local text = assert(io.open(report.file)):read("*a")
    assert.matches("%-%- migrate:up\n", text)
    assert.matches("%-%- migrate:down\n", text)
    write(dir, "007_seven.sql", M1)
    report = assert(migrate.create(dir, "next_one"))
    assert.equal(dir .. "/008_next_one.sql", report.file)
  end)

  it("creates a missing directory, and refuses an empty name", function()
    local report = assert(migrate.create(dir .. "/sub/dir", "first"))
    assert.equal(dir .. "/sub/dir/001_first.sql", report.file)
    local _, err = migrate.create(dir, "  !! ")
    assert.equal("invalid_input", err.kind)
    _, err = migrate.create(dir, nil)
    assert.matches("name is required", err.message)
  end)

  it("makes files the runner accepts", function()
    local conn = fresh("create")
    local sub = dir .. "/runnable"
    local report = assert(migrate.create(sub, "empty"))
    assert(migrate.up(conn, { dir = sub }))
    assert.same({ report.version }, versions(history(conn)))
    conn:close()
  end)
end)
