-- Issue 7: a walkthrough step of `coderunner-db demo` / `examples errors` that
-- fails names the step and the real error (it used to die concatenating nil).
local server = require "support.server"

local function shell_quote(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

local function cli(args, url)
  local vm = os.getenv("CODERUNNER_LUA") or "lua5.4"
  local p = assert(io.popen(("DATABASE_URL=%s %s bin/coderunner-db %s 2>&1; echo \"::exit $?\""):format(
    shell_quote(url), vm, args)))
  local out = p:read("*a")
  p:close()
  return tonumber(out:match("::exit (%d+)%s*$")), out
end

describe("coderunner-db walkthroughs", function()
  local conninfo

  setup(function()
    conninfo = server.fresh_database("coderunner_cli_must_spec")
    local pg = require "coderunner.pg"
    local conn = assert(pg.connect(conninfo))
    assert(require("coderunner.migrate").up(conn, { dir = "migrations" }))
    -- make one step fail on purpose: every new user is refused by a trigger
    assert(conn:exec([[
      CREATE FUNCTION refuse_users() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN RAISE EXCEPTION 'users are closed today'; END $$;
      CREATE TRIGGER refuse_users BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION refuse_users();
    ]]))
    conn:close()
  end)

  for args, step in pairs { demo = "Create a user", ["examples errors"] = "Set up" } do
    it(args .. " names the step that failed and its real error", function()
      local status, out = cli(args, conninfo)
      assert.are_not.equal(0, status, out)
      assert.matches(step .. ": server: users are closed today", out, 1, true)
      assert.is_nil(out:find("attempt to concatenate", 1, true), out)
    end)
  end
end)
