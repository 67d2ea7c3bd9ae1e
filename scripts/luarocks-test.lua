-- `luarocks test` runs this file with the rock's Lua interpreter: busted's
-- runner, as installed for that Lua, on the specs that .busted names.
require "busted.runner" { standalone = false }
