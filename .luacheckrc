-- luacheck configuration: the code runs on Lua 5.4 and LuaJIT 2.1 alike.
std = "max"
max_line_length = 120
exclude_files = { "build/**" }
files["spec/**"] = { std = "+busted" }
files["bin/coderunner-db"] = { std = "max" }
