-- The migration planner as a pure function: files and history rows in, a plan
-- and the steps of a run out. No server, no directory: plain tables.
local planner = require "coderunner.migrate.planner"

local function file(version, name, text, checksum)
  return { version = version, name = name, filename = ("%03d_%s.sql"):format(version, name),
           path = ("db/%03d_%s.sql"):format(version, name), digits = 3, text = text, checksum = checksum }
end

local function row(version, name, checksum)
  return { version = version, name = name, checksum = checksum, applied_at = "2026-01-01 00:00:00+00",
           duration_ms = 1.5, applied_by = "me" }
end

local UP_DOWN = "-- migrate:up\ncreate table t (id int);\n-- migrate:down\ndrop table t;\n"
local UP_ONLY = "-- migrate:up\ncreate table u (id int);\n"

local function versions(steps)
  local out = {}
  for i, s in ipairs(steps) do out[i] = s.entry.version end
  return out
end

describe("migrate planner (pure, no server)", function()
  it("merges files and history into states, with the current version", function()
    local plan = planner.plan({ file(1, "a", UP_DOWN, "s1"), file(2, "b", UP_DOWN, "s2x"), file(4, "d", UP_DOWN, "s4") },
      { [1] = row(1, "a", "s1"), [2] = row(2, "b", "s2"), [3] = row(3, "c", "s3") }, "db")
    local states = {}
    for i, e in ipairs(plan.entries) do states[i] = e.version .. ":" .. e.state end
    assert.same({ "1:applied", "2:changed", "3:missing", "4:pending" }, states)
    assert.equal(3, plan.current)
    assert.equal("db/003_c.sql", plan.by_version[3].path)
    assert.equal("s2", plan.by_version[2].applied_checksum)
    assert.equal("s2x", plan.by_version[2].checksum)
    assert.is_nil(plan.by_version[4].out_of_order)
  end)

  it("marks a pending version older than the newest applied one as out of order", function()
    local plan = planner.plan({ file(1, "a", UP_DOWN, "s1"), file(2, "b", UP_DOWN, "s2"), file(3, "c", UP_DOWN, "s3") },
      { [1] = row(1, "a", "s1"), [3] = row(3, "c", "s3") }, "db")
    assert.is_true(plan.by_version[2].out_of_order)
    local steps, err = planner.steps(plan, "up", {})
    assert.is_nil(steps)
    assert.equal("invalid_input", err.kind)
    assert.matches("older than the newest applied version 3: 002_b.sql", err.message)
    steps = assert(planner.steps(plan, "up", { allow_out_of_order = true }))
    assert.same({ 2 }, versions(steps))
    local problems = planner.problems(plan, false)
    assert.equal("out_of_order", problems[1].problem)
    assert.same({}, (planner.problems(plan, true)))
  end)

  it("up: pending steps in order, up to `to`, each parsed and split", function()
    local plan = planner.plan({ file(1, "a", UP_DOWN, "s1"), file(2, "b", UP_DOWN, "s2"), file(3, "c", UP_ONLY, "s3") },
      { [1] = row(1, "a", "s1") }, "db")
    local steps = assert(planner.steps(plan, "up", {}))
    assert.same({ 2, 3 }, versions(steps))
    assert.equal(1, #steps[1].statements)
    assert.equal("create table t (id int)", steps[1].statements[1].sql:gsub(";%s*$", ""))
    assert.equal(2, steps[1].statements[1].file_line)
    assert.is_true(steps[1].section.transaction)
    assert.equal(3, steps[2].after)
    assert.same({ 2 }, versions(assert(planner.steps(plan, "up", { to = 2 }))))
    local _, err = planner.steps(plan, "up", { to = 9 })
    assert.matches("no migration with version 9 in db", err.message)
  end)

  it("down: the newest applied steps, newest first, with the version each leaves current", function()
    local plan = planner.plan({ file(1, "a", UP_DOWN, "s1"), file(2, "b", UP_DOWN, "s2"), file(3, "c", UP_DOWN, "s3") },
      { [1] = row(1, "a", "s1"), [2] = row(2, "b", "s2") }, "db")
    local steps = assert(planner.steps(plan, "down", { steps = 5 }))
    assert.same({ 2, 1 }, versions(steps))
    assert.equal(1, steps[1].after)
    assert.is_nil(steps[2].after)
    assert.equal("drop table t;", steps[1].section.text)
  end)

  it("refuses changed, missing and down-less migrations before any step", function()
    local plan = planner.plan({ file(1, "a", UP_DOWN, "s1"), file(2, "b", UP_ONLY, "s2") },
      { [1] = row(1, "a", "s1x"), [2] = row(2, "b", "s2") }, "db")
    local _, err = planner.steps(plan, "up", {})
    assert.matches("applied migration changed since it was applied: db/001_a.sql %(checksum recorded s1x, file now s1%)",
      err.message)
    _, err = planner.steps(plan, "down", { steps = 1 })
    assert.matches("cannot revert db/002_b.sql: it has no '%-%- migrate:down' section", err.message)
    plan = planner.plan({}, { [7] = row(7, "gone", "s7") }, "db")
    _, err = planner.steps(plan, "up", {})
    assert.matches("applied migration missing from db: 007_gone.sql", err.message)
    _, err = planner.steps(plan, "down", { steps = 1 })
    assert.matches("cannot revert version 7 %(gone%): its file is missing from db", err.message)
  end)

  it("problems lists every changed, missing and malformed file, by version", function()
    local plan = planner.plan({ file(1, "a", UP_DOWN, "s1x"), file(3, "c", "create table x ();\n", "s3") },
      { [1] = row(1, "a", "s1"), [2] = row(2, "b", "s2") }, "db")
    local problems, checked = planner.problems(plan)
    assert.equal(2, checked)
    local kinds = {}
    for i, p in ipairs(problems) do kinds[i] = p.version .. ":" .. p.problem end
    assert.same({ "1:changed", "2:missing", "3:invalid_file" }, kinds)
    assert.matches("db/003_c.sql:1: SQL before the '%-%- migrate:up' marker", problems[3].message)
  end)

  it("an unknown direction is a programmer error", function()
    assert.has_error(function() planner.steps(planner.plan({}, {}, "db"), "sideways", {}) end)
  end)
end)
