-- The service is a thin layer: its SQL lives in the repositories (the health
-- check and the statistics in coderunner.stats), slow statements are reported
-- the way the core reports them, and the CLI and the service hold no SQL.
local pg = require "coderunner.pg"
local db = require "coderunner.db"
local stats = require "coderunner.stats"
local migrate = require "coderunner.migrate"
local server = require "support.server"

local VM = (os.getenv("CODERUNNER_LUA") or "lua"):gsub("%W", "")

local function read(path)
  local f = assert(io.open(path, "r"))
  local text = f:read("*a")
  f:close()
  return text
end

describe("the service's layers", function()
  local url
  setup(function()
    url = server.fresh_database("cr_layers_" .. VM)
    local conn = assert(pg.connect(url))
    assert(migrate.up(conn, { dir = "migrations" }))
    conn:close()
  end)

  it("db.lua and the CLI hold no SQL; the repositories do", function()
    for _, path in ipairs { "lua/coderunner/db.lua", "lua/coderunner/cli.lua", "lua/coderunner/cli/service.lua",
                            "lua/coderunner/cli/migrate.lua" } do
      local code = read(path):gsub("%-%-[^\n]*", "")
      for _, word in ipairs { "SELECT ", "INSERT ", "UPDATE ", "DELETE ", "select ", "insert into", "delete from" } do
        assert.is_nil(code:find(word, 1, true), path .. " runs SQL: " .. word)
      end
    end
    assert.truthy(read("lua/coderunner/stats.lua"):find("pg_database_size", 1, true))
  end)

  it("health and statistics come from the stats repository, over any executor", function()
    local conn = assert(pg.connect(url))
    local server_row = assert(stats.server(conn))
    assert.equal("cr_layers_" .. VM, server_row.database)
    local counts = assert(conn:transaction(stats.counts, { isolation = "repeatable read", read_only = true }))
    local svc = assert(db.new({ url = url, pool = { min = 0, max = 1 } }))
    assert(svc:create_user("layers@example.com", "hash", "pro"))
    local s = assert(svc:get_system_stats())
    assert.equal(counts.users.total + 1, s.users.total)
    assert.equal(counts.users.by_plan.pro + 1, s.users.by_plan.pro)
    assert.same(counts.deployments.by_status, s.deployments.by_status)
    assert.equal(server_row.server_version, svc:health().server_version)
    svc:close()
    conn:close()
  end)

  it("slow statements reach the logger as the core words them (no second default)", function()
    local lines = {}
    local svc = assert(db.new({ url = url, slow_query_ms = 1, pool = { min = 0, max = 1 },
      logger = function(level, message) lines[#lines + 1] = level .. " " .. message end }))
    assert(svc:query("SELECT pg_sleep(0.02), $1::text AS secret", "param-secret-value"))
    svc:close()
    local text = table.concat(lines, "\n")
    assert.matches("warn slow query %([%d%.]+ ms%): SELECT pg_sleep%(0%.02%)", text)
    assert.not_matches("param-secret-value", text, 1, true)
  end)
end)
