-- `coderunner-db load TABLE FILE`: bin/coderunner-db run as a subprocess (with
-- the VM running the specs) against a real server; what it stored is read
-- back with SELECT.
local cjson = require "cjson"
local pg = require "coderunner.pg"
local server = require "support.server"

local LUA = os.getenv("CODERUNNER_LUA") or "lua5.4"
local VM = LUA:gsub("%W", "")

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

describe("coderunner-db load", function()
  local url, conn
  local files = {}

  setup(function()
    url = server.fresh_database("cr_cli_load_" .. VM)
    conn = assert(pg.connect(url))
    assert(conn:exec([[
      create table items (id int primary key, label text, note text);
      create table "MixedCase" (n int);
      create schema other;
      create table other.nums (n int not null)]]))
  end)
  teardown(function()
    conn:close()
    for _, path in ipairs(files) do os.remove(path) end
  end)
  before_each(function() assert(conn:exec("truncate items; truncate other.nums")) end)

  local function file(text)
    local path = os.tmpname()
    files[#files + 1] = path
    write(path, text)
    return path
  end

  -- Runs `coderunner-db --url URL <args>` with stdout into a pipe; returns stdout
  -- (ending with "__rc=<exit code>") and stderr.
  -- feed: a shell command whose output is the command's stdin.
  local function run(args, feed)
    local errfile = os.tmpname()
    local p = assert(io.popen(("(%s%s bin/coderunner-db --url %s %s 2>%s; echo \"__rc=$?\") | cat")
      :format(feed and ("(" .. feed .. ") | ") or "", LUA, quote(url), args, errfile)))
    local out = p:read("*a")
    p:close()
    local err = slurp(errfile)
    os.remove(errfile)
    return out, err
  end

  -- The same with the exit code (no pipe after the command: $? is its own).
  local function run_rc(args, stdin)
    local errfile, outfile = os.tmpname(), os.tmpname()
    local cmd = ("%s%s bin/coderunner-db --url %s %s >%s 2>%s; echo $?"):format(
      stdin and ("cat %s | "):format(quote(stdin)) or "", LUA, quote(url), args, outfile, errfile)
    local p = assert(io.popen(cmd))
    local rc = tonumber(p:read("*a"):match("(%d+)%s*$"))
    p:close()
    local out, err = slurp(outfile), slurp(errfile)
    os.remove(errfile)
    os.remove(outfile)
    return rc, out, err
  end

  local function items()
    local res = assert(conn:query("select id, label, note from items order by id"))
    local out = {}
    local function v(x) if x == nil then return pg.null end return x end
    for i = 1, #res do out[i] = { res[i].id, v(res[i].label), v(res[i].note) } end
    return out
  end

  local function count(tbl)
    return assert(conn:query("select count(*)::int as n from " .. tbl))[1].n
  end

  it("loads a CSV with quoted commas, doubled quotes, newlines and NULLs exactly", function()
    local path = file('1,"hello, world",plain\n2,"say ""hi""",\n3,"two\nlines",""\n4,,"tab\there \\ back"\n')
    local rc, out, err = run_rc("load items " .. quote(path))
    assert.equal(0, rc, err)
    assert.matches("^loading .- into items %.%.%.\n", out)
    assert.matches("\nloaded 4 rows into items in [%d.]+ s\n$", out)
    assert.same({
      { 1, "hello, world", "plain" },
      { 2, 'say "hi"', pg.null },
      { 3, "two\nlines", "" },
      { 4, pg.null, "tab\there \\ back" },
    }, items())
  end)

  it("loads PostgreSQL's text format with --format tsv (\\N NULL, escapes), from stdin", function()
    local path = file("1\ta\\tb\t\\N\n2\tline\\nbreak\tback\\\\slash\n")
    local rc, out, err = run_rc("load --format tsv items -", path)
    assert.equal(0, rc, err)
    assert.matches("loading stdin into items", out)
    assert.same({ { 1, "a\tb", pg.null }, { 2, "line\nbreak", "back\\slash" } }, items())
  end)

  it("--header skips the first row; --columns names the file's columns; schema.table", function()
    local path = file("label,id\nfirst,10\n\"second, too\",20\n")
    local rc, _, err = run_rc("load items " .. quote(path) .. " --header --columns label,id")
    assert.equal(0, rc, err)
    assert.same({ { 10, "first", pg.null }, { 20, "second, too", pg.null } }, items())
    rc, _, err = run_rc("load other.nums " .. quote(file("n\n7\n8\n")) .. " --header")
    assert.equal(0, rc, err)
    assert.equal(2, count("other.nums"))
    rc, _, err = run_rc("load MixedCase " .. quote(file("5\n")))
    assert.equal(0, rc, err)
    assert.equal(1, count('"MixedCase"'))
  end)

  it("loads 20000 rows streaming, with start, progress and final lines in order, flushed into a pipe",
    function()
    local parts = {}
    for i = 1, 20000 do parts[i] = ('%d,"label %d, with comma",note %d\n'):format(i, i, i) end
    local path = file(table.concat(parts))
    local out, err = run("load items " .. quote(path))
    assert.matches("__rc=0", out, err)
    local function check(text, slow)
      local lines = {}
      for line in text:gmatch("[^\n]+") do lines[#lines + 1] = line end
      assert.matches("^loading .- into items %.%.%.$", lines[1])
      assert.matches("^loaded 20000 rows into items in [%d.]+ s$", lines[#lines - 1])
      assert.equal("__rc=0", lines[#lines])
      local previous = 0
      for i = 2, #lines - 2 do  -- progress lines, when it took over a second
        local n = tonumber(lines[i]:match("^loaded: (%d+) rows$"))
        assert.is_truthy(n, lines[i])
        assert.is_true(n > previous and n <= 20000)
        previous = n
      end
      if slow then assert.is_true(previous > 10000, text) end
      assert.equal(20000, count("items"))
      assert.equal("label 20000, with comma", assert(conn:query("select label from items where id = 20000"))[1].label)
    end
    check(out)
    -- from stdin, half of it arriving after 1.5 s: at least one progress line
    assert(conn:exec("truncate items"))
    local half = #table.concat(parts, "", 1, 10000)
    out, err = run("load items -", ("head -c %d %s; sleep 1.5; tail -c +%d %s"):format(half, quote(path), half + 1,
      quote(path)))
    check(out, true)
    assert.equal("", err)
  end)

  it("a row with the wrong number of fields writes nothing, exits 1 and names the row and line", function()
    local path = file('1,a,x\n2,"b\nc",y\n3,only two\n4,d,z\n')
    local rc, out, err = run_rc("load items " .. quote(path))
    assert.equal(1, rc)
    assert.matches("error: row 3 %(line 4%): 2 fields, expected 3", err)
    assert.not_matches("loaded 3", out)
    assert.equal(0, count("items"))
  end)

  it("a value the server rejects writes nothing and names the row, with --json as one error object", function()
    local parts = {}
    for i = 1, 5000 do parts[i] = ("%d,l,n\n"):format(i) end
    parts[4321] = "4321,l,n\nnot-a-number,l,n\n"
    local path = file(table.concat(parts))
    local rc, out, err = run_rc("load items " .. quote(path))
    assert.equal(1, rc)
    assert.not_matches("loaded 5000", out)
    assert.matches('error: row 4322: invalid input syntax for type integer: "not%-a%-number"', err)
    assert.equal(0, count("items"))
    rc, out = run_rc("--json load items " .. quote(path))
    assert.equal(1, rc)
    local v = cjson.decode(out)
    assert.is_false(v.ok)
    assert.equal("load", v.command)
    assert.equal("22P02", v.error.sqlstate)
    assert.equal(4322, v.error.row)
    assert.equal(0, count("items"))
    -- a duplicate key (found when the COPY ends) writes nothing either
    rc, out, err = run_rc("load items " .. quote(file("1,a,x\n2,b,y\n1,c,z\n")))
    assert.equal(1, rc)
    assert.matches("duplicate key", err)
    assert.not_matches("loaded", out)
    assert.equal(0, count("items"))
  end)

  it("a bad CSV (a quote never closed) writes nothing and exits 1", function()
    local rc, _, err = run_rc("load items " .. quote(file('1,a,x\n2,"open,y\n3,c,z\n')))
    assert.equal(1, rc)
    assert.matches("row 2: line 2: a quoted field that is never closed", err)
    assert.equal(0, count("items"))
  end)

  it("an unknown table or column errors cleanly; a name that is not an identifier is refused unsent", function()
    local path = file("1,a,x\n")
    local _
    local rc, out, err = run_rc("load nosuch " .. quote(path))
    assert.equal(1, rc)
    assert.not_matches("loaded", out)
    assert.matches('error: relation "nosuch" does not exist', err)
    assert.not_matches("traceback", err)
    rc, out, err = run_rc("load items " .. quote(path) .. " --columns id,label,nope")
    assert.equal(1, rc)
    assert.matches('column "nope" of relation "items" does not exist', err)
    assert.not_matches("loaded", out)
    for _, args in ipairs {
      { "'items; drop table items'", "table 'items; drop table items' is not a plain identifier" },
      { "items --columns 'id,\"label\"'", "column '\"label\"' is not a plain identifier" },
      { "a.b.c", "at most schema.table" },
    } do
      rc, out = run_rc("--json load " .. args[1] .. " " .. quote(path))
      assert.equal(2, rc)
      local v = cjson.decode(out)
      assert.equal("invalid_input", v.error.kind)
      assert.matches(args[2], v.error.message, 1, true)
    end
    rc, _, err = run_rc("load items /tmp")
    assert.equal(1, rc)
    assert.matches("error: reading /tmp: ", err)
    rc, out = run_rc("--json load items /nonexistent/file.csv")
    assert.equal(1, rc)
    assert.matches("cannot open /nonexistent/file.csv", cjson.decode(out).error.message, 1, true)
    assert.equal(0, count("items"))
  end)

  it("--json prints one JSON object and nothing else", function()
    local parts = {}
    for i = 1, 3000 do parts[i] = ("%d,x,y\n"):format(i) end
    local rc, out, err = run_rc("--json load items " .. quote(file(table.concat(parts))))
    assert.equal(0, rc, err)
    assert.equal("", err)
    local body = out:match("^(%b{})\n$")
    assert.is_truthy(body, out)
    local v = cjson.decode(body)
    assert.is_true(v.ok)
    assert.equal("load", v.command)
    assert.equal("items", v.table)
    assert.equal(3000, v.rows)
    assert.equal("csv", v.format)
    assert.is_number(v.duration_ms)
    assert.equal(3000, count("items"))
  end)

  it("is listed in the usage text", function()
    local rc, out = run_rc("--help")
    assert.equal(0, rc)
    assert.matches("load", out)
    rc, out = run_rc("load --help")
    assert.equal(0, rc)
    for _, opt in ipairs { "%-%-columns", "%-%-format", "%-%-header", "stdin" } do assert.matches(opt, out) end
  end)
end)
