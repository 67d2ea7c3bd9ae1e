-- luacheck configuration: the code runs on Lua 5.4 and LuaJIT 2.1 alike.
std = "max"
max_line_length = 120
exclude_files = { "build/**" }
-- Specs hold long SQL strings and assertion messages.
files["spec/**"] = { std = "+busted", max_line_length = false }
files["bin/coderunner-db"] = { std = "max" }
-- The OpenResty example runs in nginx's Lua VM.
files["examples/openresty/**"] = { std = "max+ngx_lua" }
