-- Connection inputs and defaults: escape functions refuse NUL, errors are one
-- line, TCP keepalives are on unless the caller says otherwise.
local pg = require "coderunner.pg"
local server = require "support.server"

describe("coderunner.pg connection safety", function()
  local conn

  setup(function()
    conn = server.connect()
  end)

  teardown(function()
    conn:close()
  end)

  describe("escape functions", function()
    it("refuse a NUL byte with invalid_input instead of cutting the string short", function()
      for _, fn in ipairs { "escape_literal", "escape_identifier" } do
        local v, err = conn[fn](conn, "abc\0' OR 1=1")
        assert.is_nil(v)
        assert.are.equal("invalid_input", err.kind)
        assert.are.equal("cannot escape a string containing a NUL byte", err.message)
      end
    end)

    it("refuse text invalid in the client encoding, in one line", function()
      local v, err = conn:escape_literal("\255\254")
      assert.is_nil(v)
      assert.are.equal("invalid_input", err.kind)
      assert.is_nil(err.message:find("\n", 1, true))
    end)

    it("still escape ordinary text", function()
      assert.are.equal("'it''s'", conn:escape_literal("it's"))
      assert.are.equal('"a""b"', conn:escape_identifier('a"b'))
    end)
  end)

  describe("JSON parameters", function()
    it("refuse invalid UTF-8 and NUL with invalid_input before anything is sent", function()
      assert(conn:query("create temp table js (v jsonb)"))
      for _, bad in ipairs {
        { a = "ok\255" }, { a = "nul\0x" }, { ["k\255"] = 1 }, pg.json("\192\128"), { "\237\160\128" },
      } do
        local res, err = conn:query("insert into js values ($1)", bad)
        assert.is_nil(res)
        assert.are.equal("invalid_input", err.kind)
        assert.matches("UTF-8 without NUL", err.message, 1, true)
      end
      assert.are.equal(0, conn:query("select count(*)::int as n from js")[1].n)
      local v, err = pg.json_encode({ a = "x\0" })
      assert.is_nil(v)
      assert.are.equal("invalid_input", err.kind)
      -- valid UTF-8 goes through unchanged
      assert(conn:query("insert into js values ($1)", { a = "caf\195\169 \240\159\152\128" }))
      assert.are.equal("caf\195\169 \240\159\152\128", conn:query("select v->>'a' as a from js")[1].a)
      assert(conn:query("drop table js"))
    end)
  end)

  describe("keepalives", function()
    it("are on by default, with a short idle time", function()
      local c = assert(pg.connect("host=127.0.0.1"))
      assert.are.equal("1", c:option("keepalives"))
      assert.are.equal("30", c:option("keepalives_idle"))
      assert.are.equal("10", c:option("keepalives_interval"))
      assert.are.equal("3", c:option("keepalives_count"))
      c:close()
    end)

    it("keep what the caller set", function()
      local c = assert(pg.connect("host=127.0.0.1 keepalives_idle=7 keepalives=0"))
      assert.are.equal("7", c:option("keepalives_idle"))
      assert.are.equal("0", c:option("keepalives"))
      c:close()
    end)

    it("option() never returns the password", function()
      assert.is_nil(conn:option("password"))
      assert.is_nil(conn:option("no_such_option"))
    end)
  end)

  describe("error messages", function()
    it("are one line for a failed connect (libpq's hint lines folded)", function()
      local c, err = pg.connect("host=127.0.0.1 port=1 connect_timeout=2 password=s3cret")
      assert.is_nil(c)
      assert.are.equal("connect", err.kind)
      assert.is_nil(err.message:find("\n", 1, true))
      assert.is_nil(err.message:find("s3cret", 1, true))
      assert.matches("Is the server running", err.message, 1, true)
    end)

    it("are one line for a bad conninfo", function()
      local c, err = pg.connect("host=127.0.0.1 nonsense_option=1")
      assert.is_nil(c)
      assert.is_nil(err.message:find("\n", 1, true))
    end)
  end)
end)
