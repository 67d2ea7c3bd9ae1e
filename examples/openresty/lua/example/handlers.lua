-- The example's HTTP handlers: JSON in, JSON out, each database call a line of
-- coderunner.resty (which runs it in a worker thread; the event loop stays free).
local cjson = require "cjson.safe"
local resty = require "coderunner.resty"

local handlers = {}

-- HTTP status for each error kind of the DatabaseService.
local STATUS = {
  invalid_input = 400, conflict = 409, invalid_transition = 409,
  pool_timeout = 503, connect = 503, closed = 503, timeout = 504,
}

-- Sends status and body (a table, or JSON text).
local function reply(status, body)
  ngx.status = status
  ngx.header["Content-Type"] = "application/json"
  ngx.say(type(body) == "string" and body or cjson.encode(body))
  return ngx.exit(ngx.OK)
end

-- The rows of a result as a JSON array (a result also carries `columns` and
-- `command`; and lua-cjson writes an empty table as {}).
local function array(rows)
  local list = {}
  for i, row in ipairs(rows) do list[i] = row end
  return #list == 0 and "[]" or cjson.encode(list)
end

local function fail(err)
  return reply(STATUS[err.kind] or 500, { error = { kind = err.kind, message = err.message,
    sqlstate = err.sqlstate } })
end

-- The request's JSON body as a table, or replies 400.
local function body()
  ngx.req.read_body()
  local data = ngx.req.get_body_data()
  local t = data and cjson.decode(data)
  if type(t) ~= "table" then
    return nil, reply(400, { error = { kind = "invalid_input", message = "the body must be a JSON object" } })
  end
  return t
end

-- A user as the API shows it: never the password hash.
local function public_user(u)
  u.password_hash = nil
  return u
end

local function method_not_allowed(allowed)
  ngx.header["Allow"] = allowed
  return reply(405, { error = { kind = "invalid_input", message = "method not allowed" } })
end

--- GET /health: 200 when the database answers, 503 when not.
function handlers.health()
  local h = resty.call("health")
  return reply(h.status == "healthy" and 200 or 503, h)
end

--- POST /users {email, password_hash, plan_type}: 201 and the user.
function handlers.create_user()
  if ngx.req.get_method() ~= "POST" then return method_not_allowed("POST") end
  local b = body()
  local user, err = resty.call("create_user", b.email, b.password_hash, b.plan_type)
  if not user then return fail(err) end
  return reply(201, public_user(user))
end

--- GET /users/{id}/projects: the user's projects, newest first (?limit=&offset=).
--- POST /users/{id}/projects {name, description}: 201 and the new project.
function handlers.user_projects(user_id)
  local method = ngx.req.get_method()
  if method == "GET" then
    local args = ngx.req.get_uri_args()
    local projects, err = resty.call("get_projects_by_user_id", user_id, tonumber(args.limit),
      tonumber(args.offset))
    if not projects then return fail(err) end
    return reply(200, '{"projects":' .. array(projects) .. "}")
  elseif method == "POST" then
    local b = body()
    local project, err = resty.call("create_project", user_id, b.name, b.description)
    if not project then return fail(err) end
    return reply(201, project)
  end
  return method_not_allowed("GET, POST")
end

--- POST /projects/{id}/deployments {runtime_type, public_url, ...}: 201 and the deployment.
function handlers.create_deployment(project_id)
  if ngx.req.get_method() ~= "POST" then return method_not_allowed("POST") end
  local b = body()
  local deployment, err = resty.call("create_deployment", project_id, b)
  if not deployment then return fail(err) end
  return reply(201, deployment)
end

--- PUT /deployments/{id}/status {status}: 200 and the deployment; 409 when the
--- status machine forbids the move; 404 when there is no such deployment.
function handlers.move_deployment(deployment_id)
  local method = ngx.req.get_method()
  if method ~= "PUT" and method ~= "POST" then return method_not_allowed("PUT, POST") end
  local b = body()
  local deployment, err = resty.call("update_deployment_status", deployment_id, b.status)
  if err then return fail(err) end
  if not deployment then
    return reply(404, { error = { kind = "not_found", message = "no such deployment" } })
  end
  return reply(200, deployment)
end

return handlers
