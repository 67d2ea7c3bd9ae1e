-- Shell helpers for specs (never for the library, which forks nothing).
local shell = {}

--- Runs cmd; true when it exited 0 (os.execute says so differently on Lua
--- 5.4 and LuaJIT).
function shell.sh(cmd)
  local status = os.execute(cmd)
  return status == true or status == 0
end

--- cmd's standard output, trailing whitespace removed.
function shell.capture(cmd)
  local f = assert(io.popen(cmd))
  local out = f:read("*a")
  f:close()
  return (out:gsub("%s+$", ""))
end

return shell
