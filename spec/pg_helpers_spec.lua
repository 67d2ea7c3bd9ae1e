-- The core's small helpers that need no server: JSON codec and sleep.
local pg = require "coderunner.pg"

describe("coderunner.pg helpers", function()
  it("json_encode and json_decode round-trip with pg.null", function()
    local text = assert(pg.json_encode { a = { 1, 2, pg.null } })
    assert.are.equal('{"a":[1,2,null]}', text)
    local v = assert(pg.json_decode(text))
    assert.are.equal(pg.null, v.a[3])
    assert.are.equal(2, v.a[2])
  end)

  it("json_encode and json_decode return invalid_input errors", function()
    local v, err = pg.json_decode("{")
    assert.is_nil(v)
    assert.are.equal("invalid_input", err.kind)
    v, err = pg.json_encode(function() end)
    assert.is_nil(v)
    assert.are.equal("invalid_input", err.kind)
  end)

  it("sleep waits at least the given time", function()
    local t = pg.monotonic()
    pg.sleep(0.03)
    assert.is_true(pg.monotonic() - t >= 0.029)
  end)
end)
