-- Turns TLS on in the throwaway test cluster with a self-signed CA
-- (scripts/tls-setup.sh), and off again. The server reads its certificate on
-- reload; its key must belong to the user the server runs as.
local server = require "support.server"
local shell = require "support.shell"

local tls = {}

local sh, capture = shell.sh, shell.capture

local function ssl_on(expected)
  return server.eventually(function()
    local c = server.connect()
    local v = c:query("show ssl")[1].ssl
    c:close()
    return v == expected
  end, 5)
end

--- Makes the certificates and turns ssl on. Returns the directory holding
--- ca.crt (the right CA), other-ca.crt (a wrong one), server.crt/server.key.
function tls.enable()
  local dir = capture("mktemp -d /tmp/coderunner-tls.XXXXXX")
  assert(sh("sh scripts/tls-setup.sh " .. dir), "scripts/tls-setup.sh failed (openssl missing?)")
  local admin = server.connect()
  local data = admin:query("show data_directory")[1].data_directory
  local owner = capture("stat -c %U " .. data)
  assert(sh(("chmod 755 %s && chown %s %s/server.key %s/server.crt"):format(dir, owner, dir, dir)))
  assert(admin:query("alter system set ssl_cert_file = '" .. dir .. "/server.crt'"))
  assert(admin:query("alter system set ssl_key_file = '" .. dir .. "/server.key'"))
  assert(admin:query("alter system set ssl = on"))
  assert(admin:query("select pg_reload_conf()"))
  admin:close()
  assert(ssl_on("on"), "the test server did not turn ssl on (see its log)")
  return dir
end

--- Turns ssl off again and removes the certificates.
function tls.disable(dir)
  local admin = server.connect()
  assert(admin:query("alter system reset ssl"))
  assert(admin:query("alter system reset ssl_cert_file"))
  assert(admin:query("alter system reset ssl_key_file"))
  assert(admin:query("select pg_reload_conf()"))
  admin:close()
  assert(ssl_on("off"))
  if dir then sh("rm -rf " .. dir) end
end

return tls
