-- The schema of migrations/001_initial_schema.sql, by its behaviour on a real
-- server: what the database itself accepts and refuses.
local pg = require "coderunner.pg"
local migrate = require "coderunner.migrate"
local server = require "support.server"

local VM = (os.getenv("CODERUNNER_LUA") or "lua"):gsub("%W", "")

describe("schema 001_initial_schema", function()
  local conn, db_url

  setup(function()
    db_url = server.fresh_database("cr_schema_" .. VM)
    conn = assert(pg.connect(db_url))
    assert(migrate.up(conn, { dir = "migrations" }))
  end)
  teardown(function() conn:close() end)

  local function q(sql, ...)
    return conn:query(sql, ...)
  end

  local function new_user(email, plan)
    local rows, err = q("insert into users (email, password_hash, plan_type) values ($1, 'hash', coalesce($2, 'free')) "
      .. "returning *", email, plan)
    if not rows then return nil, err end
    return rows[1]
  end

  local function new_project(user_id, name)
    local rows, err = q("insert into projects (user_id, name) values ($1, $2) returning *", user_id, name or "p")
    if not rows then return nil, err end
    return rows[1]
  end

  local function new_deployment(project_id, fields)
    fields = fields or {}
    local rows, err = q("insert into deployments (project_id, runtime_type, public_url, status) "
      .. "values ($1, $2, $3, coalesce($4, 'pending')::deployment_status) returning *",
      project_id, fields.runtime_type == nil and "node" or fields.runtime_type, fields.public_url, fields.status)
    if not rows then return nil, err end
    return rows[1]
  end

  local function check_violation(err, constraint)
    assert.is_not_nil(err)
    assert.equal("server", err.kind)
    assert.equal("23514", err.sqlstate)
    assert.equal(constraint, err.constraint)
  end

  describe("users", function()
    it("gets a uuid, the free plan and both timestamps by default", function()
      local rows = assert(q("insert into users (email, password_hash) values ('ada@example.com', 'h') returning *"))
      local u = rows[1]
      assert.matches("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-%x%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$", u.id)
      assert.equal("free", u.plan_type)
      assert.truthy(u.created_at)
      assert.equal(u.created_at, u.updated_at)
    end)

    it("accepts each plan of the list", function()
      for _, plan in ipairs { "free", "pro", "enterprise" } do
        assert.equal(plan, assert(new_user(plan .. "@example.com", plan)).plan_type)
      end
    end)

    it("rejects a plan outside the list", function()
      for _, plan in ipairs { "gold", "Pro", "" } do
        local u, err = new_user("plan-" .. #plan .. "@example.com", plan)
        assert.is_nil(u)
        check_violation(err, "users_plan_type_check")
      end
    end)

    it("rejects a malformed email", function()
      for _, email in ipairs { "plain", "no-at.example.com", "a@b", "a b@example.com", "@example.com",
                               "a@example.", "a@@example.com", "" } do
        local u, err = new_user(email)
        assert.is_nil(u, email)
        check_violation(err, "users_email_format")
      end
    end)

    it("accepts usual addresses", function()
      for _, email in ipairs { "first.last+tag@sub.example.co.uk", "x_y-z%1@a-b.io" } do
        assert(new_user(email))
      end
    end)

    it("rejects a second user with the same email as a conflict", function()
      assert(new_user("twice@example.com"))
      local u, err = new_user("twice@example.com")
      assert.is_nil(u)
      assert.equal("conflict", err.kind)
      assert.equal("23505", err.sqlstate)
      assert.equal("users_email_key", err.constraint)
    end)

    it("requires an email and a password hash", function()
      local rows, err = q("insert into users (email, password_hash) values ('nohash@example.com', null)")
      assert.is_nil(rows)
      assert.equal("23502", err.sqlstate)
      rows, err = q("insert into users (password_hash) values ('h')")
      assert.is_nil(rows)
      assert.equal("23502", err.sqlstate)
    end)
  end)

  describe("projects and deployments", function()
    local user, project

    setup(function()
      user = assert(new_user("owner@example.com", "pro"))
      project = assert(new_project(user.id, "site"))
    end)

    it("refuse a project of an unknown user and a blank name", function()
      local p, err = new_project("00000000-0000-4000-8000-000000000000")
      assert.is_nil(p)
      assert.equal("23503", err.sqlstate)
      p, err = new_project(user.id, "   ")
      assert.is_nil(p)
      check_violation(err, "projects_name_not_blank")
    end)

    it("give a deployment the pending status by default", function()
      local d = assert(new_deployment(project.id))
      assert.equal("pending", d.status)
      assert.equal("node", d.runtime_type)
    end)

    it("accept every status of the enum and reject any other", function()
      for _, s in ipairs { "pending", "building", "deploying", "running", "stopping", "stopped", "failed" } do
        assert.equal(s, assert(new_deployment(project.id, { status = s })).status)
      end
      local d, err = new_deployment(project.id, { status = "exploded" })
      assert.is_nil(d)
      assert.equal("22P02", err.sqlstate)
      assert.matches("deployment_status", err.message)
      local rows = assert(q("select enum_range(null::deployment_status)::text as r"))
      assert.equal("{pending,building,deploying,running,stopping,stopped,failed}", rows[1].r)
    end)

    it("accept http and https URLs and reject anything else", function()
      for _, url in ipairs { "http://localhost:3000", "https://app.example.com/path?x=1" } do
        assert.equal(url, assert(new_deployment(project.id, { public_url = url })).public_url)
      end
      for _, url in ipairs { "ftp://example.com", "example.com", "https://", "http:// spaced.example.com",
                             "javascript:alert(1)" } do
        local d, err = new_deployment(project.id, { public_url = url })
        assert.is_nil(d, url)
        check_violation(err, "deployments_public_url_format")
      end
    end)

    it("require a non-empty runtime_type", function()
      local d, err = new_deployment(project.id, { runtime_type = "  " })
      assert.is_nil(d)
      check_violation(err, "deployments_runtime_type_not_blank")
      d, err = new_deployment(project.id, { runtime_type = pg.null })
      assert.is_nil(d)
      assert.equal("23502", err.sqlstate)
    end)

    it("store db_connection_info as jsonb", function()
      local d = assert(new_deployment(project.id))
      local rows = assert(q("update deployments set db_connection_info = $2 where id = $1 "
        .. "returning db_connection_info, jsonb_typeof(db_connection_info) as t", d.id, { host = "db", port = 5432 }))
      assert.equal("object", rows[1].t)
      assert.same({ host = "db", port = 5432 }, rows[1].db_connection_info)
    end)
  end)

  describe("cascades", function()
    it("deleting a user deletes its projects and their deployments", function()
      local u = assert(new_user("cascade@example.com"))
      local p1, p2 = assert(new_project(u.id, "a")), assert(new_project(u.id, "b"))
      assert(new_deployment(p1.id))
      assert(new_deployment(p2.id))
      local other = assert(new_project(assert(new_user("bystander@example.com")).id))
      assert(new_deployment(other.id))

      local rows = assert(q("delete from users where id = $1", u.id))
      assert.equal(1, rows.affected_rows)
      local left = assert(q([[select (select count(*) from projects where user_id = $1)::int as projects,
        (select count(*) from deployments where project_id in ($2, $3))::int as deployments,
        (select count(*) from deployments where project_id = $4)::int as others]], u.id, p1.id, p2.id, other.id))[1]
      assert.same({ projects = 0, deployments = 0, others = 1 }, left)
    end)

    it("deleting a project deletes its deployments", function()
      local p = assert(new_project(assert(new_user("cascade2@example.com")).id))
      local d = assert(new_deployment(p.id))
      assert(q("delete from projects where id = $1", p.id))
      assert.equal(0, #assert(q("select id from deployments where id = $1", d.id)))
    end)
  end)

  describe("updated_at", function()
    it("moves on every update of users, projects and deployments, and stays on a no-op update", function()
      local u = assert(new_user("clock@example.com"))
      local p = assert(new_project(u.id))
      local d = assert(new_deployment(p.id))
      assert(q("select pg_sleep(0.01)"))
      local checks = {
        { "users", u.id, "plan_type = 'pro'" },
        { "projects", p.id, "name = 'renamed'" },
        { "deployments", d.id, "status = 'building'" },
      }
      for _, c in ipairs(checks) do
        local rows = assert(q(("update %s set %s where id = $1 returning created_at::text as c, updated_at::text as u, "
          .. "updated_at > created_at as moved"):format(c[1], c[3]), c[2]))
        assert.is_true(rows[1].moved, c[1])
        local first = rows[1].u
        assert(q("select pg_sleep(0.01)"))
        rows = assert(q(("update %s set %s where id = $1 returning updated_at::text as u"):format(c[1], c[3]), c[2]))
        assert.equal(first, rows[1].u, c[1] .. " no-op update")
      end
    end)
  end)

  describe("indexes", function()
    it("cover every foreign key, users.email and deployments.status", function()
      local rows = assert(q([[
        select t.relname as tbl, a.attname as col from pg_index i
        join pg_class t on t.oid = i.indrelid
        join pg_attribute a on a.attrelid = t.oid and a.attnum = i.indkey[0]
        where t.relname in ('users', 'projects', 'deployments') and i.indisvalid]]))
      local have = {}
      for _, r in ipairs(rows) do have[r.tbl .. "." .. r.col] = true end
      for _, want in ipairs { "users.email", "projects.user_id", "deployments.project_id", "deployments.status",
                              "users.id", "projects.id", "deployments.id" } do
        assert.is_true(have[want] or false, want)
      end
    end)
  end)

  describe("deployment status notifications (002_deployment_status_notify)", function()
    it("notifies channel deployment_status with id, project_id, old and new status on commit", function()
      local listener = assert(pg.connect(db_url))
      assert(listener:listen("deployment_status"))
      local user = assert(new_user("notify@example.com"))
      local project = assert(new_project(user.id))
      local d = assert(new_deployment(project.id))
      assert(q("update deployments set status = 'building' where id = $1", d.id))
      local note = assert(listener:wait_notification(5))
      assert.equal("deployment_status", note.channel)
      assert.equal(conn:backend_pid(), note.pid)
      assert.same({ id = d.id, project_id = project.id, old_status = "pending", new_status = "building" },
        pg.json_decode(note.payload))
      -- no change of status, another column, or a rollback: nothing
      assert(q("update deployments set status = 'building', public_url = 'https://x.example' where id = $1", d.id))
      assert(conn:transaction(function(tx)
        assert(tx:query("update deployments set status = 'failed' where id = $1", d.id))
        return nil, pg.error("invalid_input", "roll back")
      end) == nil)
      assert.is_nil(listener:wait_notification(0.2))
      listener:close()
    end)
  end)

  describe("down section", function()
    it("removes everything, and up builds it again", function()
      local runner = assert(migrate.new(conn, { dir = "migrations" }))
      local reverted = assert(runner:down { steps = 2 }).reverted
      assert.same({ 2, 1 }, { reverted[1].version, reverted[2].version })
      local rows = assert(q([[select
        (select count(*) from pg_class where relname in ('users', 'projects', 'deployments'))::int as tables,
        (select count(*) from pg_type where typname = 'deployment_status')::int as types,
        (select count(*) from pg_proc where proname = 'set_updated_at')::int as functions]]))
      assert.same({ tables = 0, types = 0, functions = 0 }, rows[1])
      assert.equal(2, #assert(runner:up()).applied)
      assert(new_user("again@example.com"))
    end)
  end)
end)
