-- The CodeRunner domain's constants, in one place: the plans a user may have
-- and the deployment status machine. The repositories validate against them,
-- the service's statistics count by them, the CLI prints them, and
-- spec/domain_spec.lua checks that the schema (migrations/) agrees.
local domain = {}

---@alias coderunner.PlanType "free"|"pro"|"enterprise"
---@alias coderunner.DeploymentStatus "pending"|"building"|"deploying"|"running"|"stopping"|"stopped"|"failed"

--- Plans a user may have, in the order of the schema's check; the first is the default.
domain.PLANS = { "free", "pro", "enterprise" }
domain.DEFAULT_PLAN = "free"

--- Every deployment status, in the order of the schema's enum; the first is the default.
domain.STATUSES = { "pending", "building", "deploying", "running", "stopping", "stopped", "failed" }
domain.DEFAULT_STATUS = "pending"

--- The allowed moves: TRANSITIONS[from][to] is true when from -> to is allowed.
domain.TRANSITIONS = {
  pending = { building = true, stopped = true, failed = true },
  building = { deploying = true, stopped = true, failed = true },
  deploying = { running = true, stopped = true, failed = true },
  running = { stopping = true, failed = true },
  stopping = { stopped = true, failed = true },
  stopped = { pending = true },
  failed = { pending = true },
}

--- For each target status, the statuses it may be reached from (in STATUSES order).
---@type table<string, string[]>
domain.ALLOWED_FROM = {}
for _, to in ipairs(domain.STATUSES) do
  local from = {}
  for _, f in ipairs(domain.STATUSES) do
    if domain.TRANSITIONS[f][to] then from[#from + 1] = f end
  end
  domain.ALLOWED_FROM[to] = from
end

--- True when a deployment may move from `from` to `to` (same status: true).
---@param from coderunner.DeploymentStatus
---@param to coderunner.DeploymentStatus
---@return boolean
function domain.can_move(from, to)
  return from == to or (domain.TRANSITIONS[from] or {})[to] == true
end

--- The statuses a deployment in `from` may move to, as a readable list.
---@param from coderunner.DeploymentStatus
---@return string
function domain.allowed_targets(from)
  local to = {}
  for _, s in ipairs(domain.STATUSES) do
    if (domain.TRANSITIONS[from] or {})[s] then to[#to + 1] = s end
  end
  return table.concat(to, ", ")
end

return domain
