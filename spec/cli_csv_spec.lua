-- coderunner.cli.csv: the streaming readers of `coderunner-db load` (pure Lua).
local csv = require "coderunner.cli.csv"

local N = csv.NULL

-- Every record of text, as {fields, line} pairs; or nil, message at the first error.
local function all(make, text, opts)
  local next_record = make(csv.lines_of(text), opts)
  local out = {}
  while true do
    local fields, line = next_record()
    if not fields then
      if line then return nil, line end
      return out
    end
    out[#out + 1] = { fields, line }
  end
end

describe("coderunner.cli.csv reader (PostgreSQL's CSV)", function()
  it("splits on commas; quoted fields keep commas, doubled quotes and newlines", function()
    local text = 'a,b,c\n1,"x, y","say ""hi"""\n2,"two\nlines\r\nhere",end\n'
    assert.same({
      { { "a", "b", "c" }, 1 },
      { { "1", "x, y", 'say "hi"' }, 2 },
      { { "2", "two\nlines\r\nhere", "end" }, 3 },
    }, all(csv.reader, text))
  end)

  it("an empty unquoted field is NULL, a quoted empty field the empty string", function()
    assert.same({ { { N, "", N, " " }, 1 } }, all(csv.reader, ',"",, \n'))
    assert.same({ { { N }, 1 } }, all(csv.reader, "\n"))
  end)

  it("takes \\r\\n line ends and a last line without a newline", function()
    assert.same({ { { "1", "a" }, 1 }, { { "2", "b" }, 2 } }, all(csv.reader, "1,a\r\n2,b"))
  end)

  it("a quote inside a field opens a quoted part, as PostgreSQL reads it", function()
    assert.same({ { { "ab,cd", "x" }, 1 } }, all(csv.reader, 'a"b,c"d,x\n'))
  end)

  it("uses opts.null and opts.delimiter", function()
    local null = {}
    assert.same({ { { "a", null, "b,c" }, 1 } }, all(csv.reader, "a;;b,c\n", { null = null, delimiter = ";" }))
  end)

  it("a quote never closed is an error naming the line it opened on", function()
    local rows, err = all(csv.reader, 'ok,1\n2,"open\nmore\n')
    assert.is_nil(rows)
    assert.matches("line 2: a quoted field that is never closed", err)
  end)

  it("a record over max_record bytes is an error, not the rest of the file in memory", function()
    local rows, err = all(csv.reader, '"' .. ("x\n"):rep(100), { max_record = 50 })
    assert.is_nil(rows)
    assert.matches("line 1: a record longer than 50 bytes", err)
  end)

  it("a carriage return outside quotes mid-line is an error", function()
    local rows, err = all(csv.reader, "a\rb,c\n")
    assert.is_nil(rows)
    assert.matches("carriage return", err)
  end)

  it("reads one line at a time from `read`", function()
    local calls = 0
    local lines = { "1,a\n", "2,b\n" }
    local next_record = csv.reader(function()
      calls = calls + 1
      return lines[calls]
    end)
    assert.same({ "1", "a" }, (next_record()))
    assert.equal(1, calls)
  end)
end)

describe("coderunner.cli.csv text_reader (PostgreSQL's text format)", function()
  it("splits on tabs, \\N is NULL, escapes are undone", function()
    local text = "1\ta\\tb\\nc\\\\d\t\\N\n2\t\t\\x41\\101\\q\n"
    assert.same({
      { { "1", "a\tb\nc\\d", N }, 1 },
      { { "2", "", "AAq" }, 2 },
    }, all(csv.text_reader, text))
  end)

  it("stops at a line \\. and takes \\r\\n", function()
    assert.same({ { { "1", "x" }, 1 } }, all(csv.text_reader, "1\tx\r\n\\.\n2\ty\n"))
  end)

  it("a backslash at the end of a field is an error naming line and field", function()
    local rows, err = all(csv.text_reader, "1\tok\n2\tbad\\\n")
    assert.is_nil(rows)
    assert.matches("line 2, field 2: a backslash at the end of a field", err)
  end)
end)
