---@meta coderunner.pg
-- LuaCATS description of the C module `coderunner.pg` (csrc/). Not loaded at run
-- time: lua-language-server reads it (see .luarc.json) to check callers.

---@class coderunner.pg
---@field null coderunner.pg.Null   SQL NULL in parameters, arrays and JSON: the light userdata NULL (== cjson.null == ngx.null)
---@field json_array_mt table       metatable marking decoded JSON arrays (so `[]` stays `[]`)
---@field version string            module version
---@field libpq_version integer     PQlibVersion(), e.g. 150004
local pg = {}

---@alias coderunner.pg.Null lightuserdata

---@alias coderunner.pg.ErrorKind
---| "connect"            # could not connect, or the connection was lost before anything ran
---| "server"             # the server rejected the statement (see sqlstate)
---| "timeout"            # statement_timeout or lock_timeout cancelled it (57014, 55P03), or connect_timeout ran out
---| "pool_timeout"       # no connection became free within acquire_timeout
---| "closed"             # the pool was closed, or the connection died mid-statement
---| "invalid_input"      # a parameter could not be encoded, a wrong number of parameters, a conninfo refused, or a caller's value was refused
---| "conflict"           # unique violation (23505)
---| "invalid_transition" # a state change that is not allowed (registered by coderunner.deployments)
---| string               # any kind a Lua layer registered with pg.register_error_kind

---@class coderunner.pg.Error
---@field kind coderunner.pg.ErrorKind
---@field message string
---@field sqlstate? string   five-character SQLSTATE for server errors
---@field severity? string
---@field detail? string
---@field hint? string
---@field position? integer  1-based character offset into the SQL text
---@field schema? string
---@field table? string
---@field column? string
---@field datatype? string
---@field constraint? string
---@field where? string
---@field results? coderunner.pg.PipelineResults  a pipeline or batch cut by its deadline: every statement's result or error

---@alias coderunner.pg.Param nil|boolean|integer|number|string|table|coderunner.pg.Null

---@class coderunner.pg.Column
---@field name string      the column's name (duplicates kept here)
---@field type_oid integer the type OID
---@field type? string     pg_type.typname: "int4", "_text", "deployment_status"

---@class coderunner.pg.Result: table[]   rows keyed by column name
---@field affected_rows? integer  rows touched by INSERT/UPDATE/DELETE (and rows returned by SELECT)
---@field command? string         the command tag's verb: "SELECT", "INSERT", ...
---@field columns coderunner.pg.Column[]  every column, in order

---@class coderunner.pg.ConnectOptions
---@field statement_cache? integer  prepared statements kept per connection (LRU); 0 disables. Default 100
---@field connect_timeout? number   seconds. Default 10
---@field slow_query_ms? number     statements slower than this are logged (level "warn"); default: none
---@field logger? fun(level: string, message: string, info: table)  notices; default: stderr
---@field query_timeout? number    client-side deadline per statement, seconds; 0/nil: none

--- Opens a connection. conninfo: libpq keywords ("host=... dbname=..."), a
--- postgres:// URL, or "" for libpq's PG* environment variables.
---@param conninfo? string
---@param opts? coderunner.pg.ConnectOptions
---@return coderunner.pg.Conn|nil conn
---@return coderunner.pg.Error|nil err
function pg.connect(conninfo, opts) end

---@class coderunner.pg.PoolOptions
---@field conninfo? string
---@field min? integer            connections kept open (default 2, or max when max < 2)
---@field max? integer            upper bound (default 10)
---@field idle_timeout? number    seconds an idle connection above `min` lives (default 30)
---@field connect_timeout? number seconds (default 2)
---@field acquire_timeout? number seconds to wait for a free connection (default 5)
---@field max_lifetime? number    seconds before a connection is retired (default: none)
---@field statement_cache? integer per connection (default 100)
---@field slow_query_ms? number   default 1000
---@field on_slow_query? fun(info: {sql: string, duration_ms: number})
---@field logger? fun(level: string, message: string, info: table)
---@field name? string            process-wide: every Lua state asking for this name shares one pool
---@field query_timeout? number   client-side deadline per statement, seconds (default: none)
---@field reset? "auto"|"always"|"never"  session reset (DISCARD ALL) before lending (default "auto")
---@field leak_traceback? boolean record where each connection is taken, for leak reports

--- Asks the server to cancel what the connection with this token runs (thread-safe).
--- true: request delivered; false: no open connection has that token.
---@param token integer
---@return boolean|nil sent
---@return coderunner.pg.Error|nil err
function pg.cancel(token) end

--- Creates a pool. Fails (nil, err kind invalid_input) only for bad options (unknown
--- names, non-integral min/max/statement_cache, non-function callbacks) or an
--- unparsable conninfo; an unreachable server is not an error here. With `name`:
--- the living pool of that name in the process when there is one (nil, err kind
--- invalid_input when an option given disagrees with it), else a new one.
---@param opts coderunner.pg.PoolOptions
---@return coderunner.pg.Pool|nil pool
---@return coderunner.pg.Error|nil err
function pg.pool(opts) end

--- Marks v as JSON for a parameter (a plain table is JSON already).
---@return table
function pg.json(v) end

--- Marks a Lua array as a PostgreSQL array parameter.
---@param t table
---@return table
function pg.array(t) end

--- Marks a string as binary (bytea) for a parameter.
---@param s string
---@return table
function pg.bytea(s) end

--- Builds an error object (used by the Lua layers for invalid_input and the like).
--- Raises on a kind that is neither the core's nor registered.
---@param fields {kind: coderunner.pg.ErrorKind, message: string}|table
---@return coderunner.pg.Error
function pg.error(fields) end

--- Lets pg.error build errors of a kind the domain layer owns (lower-case
--- letters, digits, underscores). Idempotent, per Lua state. Pools never count
--- registered kinds in stats().errors.
---@param name string
---@return string name
function pg.register_error_kind(name) end

---@class coderunner.pg.SqlstateInfo
---@field kind coderunner.pg.ErrorKind  the core kind a server error with this SQLSTATE gets
---@field retryable boolean     serialization failure or deadlock: the transaction may succeed if run again
---@field stale_plan boolean    a cached prepared statement must be prepared again
---@field rejects_value boolean the server refused a value (check, not null, foreign key, bad text, too long)

--- The core's facts about a SQLSTATE (its one table, which the core itself uses).
---@param sqlstate string
---@param message? string  the primary message; tells the generic stale-plan codes apart
---@return coderunner.pg.SqlstateInfo
function pg.sqlstate_info(sqlstate, message) end

--- Registers a decoder: values of the type (and elements of its arrays) decode
--- as decode_fn(text, type_oid). name_or_oid: a type name the server resolves
--- (to_regtype) or an OID. executor: a connection or pool to register for
--- alone; without it, every connection of this Lua state. nil removes it.
---@param name_or_oid string|integer
---@param decode_fn? fun(text: string, type_oid: integer): any
---@param executor? coderunner.pg.Conn|coderunner.pg.Pool
---@return true
function pg.register_type(name_or_oid, decode_fn, executor) end

--- True when v is an error object made by this module.
---@return boolean
function pg.is_error(v) end

--- The conninfo or URL with every password replaced by "***".
---@param conninfo string
---@return string
function pg.redact(conninfo) end

--- Derives a libpq keyword conninfo from `conninfo` in any form (keywords, a
--- postgres:// URL, or "" for the PG* environment) with `changes` applied:
--- `{ dbname = "other" }` points it at another database; `false` removes a
--- keyword. Returns nil, err (kind invalid_input) for an unknown keyword or an
--- unparsable conninfo; the error never quotes a password.
---@param conninfo? string
---@param changes? table<string, string|number|false>
---@return string|nil conninfo
---@return coderunner.pg.Error|nil err
function pg.conninfo_with(conninfo, changes) end

--- Splits an SQL script into statements (quotes, dollar quotes and comments
--- respected). Returns an array of { sql = string, line = integer }, or nil, err.
---@param script string
---@return {sql: string, line: integer}[]|nil
---@return coderunner.pg.Error|nil
function pg.split_sql(script) end

--- Seconds from a monotonic clock (sub-microsecond resolution), for timing.
---@return number
function pg.monotonic() end

--- Blocks the calling thread for the given seconds (never forks a process).
---@param seconds number
function pg.sleep(seconds) end

--- Encodes a Lua value as JSON text with the core's encoder (pg.null is null).
---@param value any
---@return string|nil
---@return coderunner.pg.Error|nil
function pg.json_encode(value) end

--- Decodes JSON text with the core's decoder (null is pg.null).
---@param text string
---@return any
---@return coderunner.pg.Error|nil
function pg.json_decode(text) end

---@class coderunner.pg.Executor
local Executor = {}

--- Runs one statement with $1..$n parameters (never interpolated).
---@alias coderunner.pg.Statement string|{sql: string, timeout?: number}  a table sets a per-call deadline (seconds)

---@param sql coderunner.pg.Statement
---@param ... coderunner.pg.Param
---@return coderunner.pg.Result|nil res
---@return coderunner.pg.Error|nil err
function Executor:query(sql, ...) end

--- Runs a script of several statements, no parameters. Returns the last result.
---@param sql coderunner.pg.Statement
---@return coderunner.pg.Result|nil res
---@return coderunner.pg.Error|nil err
function Executor:exec(sql) end

---@class coderunner.pg.TxOptions
---@field isolation? "read committed"|"repeatable read"|"serializable"
---@field read_only? boolean
---@field deferrable? boolean
---@field settings? table<string, string|number|boolean>  set_config(name, value, true) at the start
---@field retries? integer  re-run fn on 40001/40P01 this many times

--- Runs fn(tx) in a transaction: rollback when fn raises or returns nil, err
--- (then returns nil, err); commit otherwise and return fn's results (true when
--- it returned nothing).
---@param fn fun(tx: coderunner.pg.Tx): ...
---@param opts? coderunner.pg.TxOptions
---@return any ...
function Executor:transaction(fn, opts) end

--- Starts a manual transaction.
---@param opts? coderunner.pg.TxOptions
---@return coderunner.pg.Tx|nil tx
---@return coderunner.pg.Error|nil err
function Executor:begin(opts) end

--- Loads rows with COPY ... FROM STDIN: an array of row arrays, or an iterator
--- returning one row array per call and nil at the end. Values encode as
--- parameters do (pg.null for NULL). Returns the number of rows stored; a bad
--- row writes nothing and returns nil, err (kind invalid_input).
---@param sql coderunner.pg.Statement  COPY table [(columns)] FROM STDIN
---@param rows any[][]|fun(): any[]|nil
---@return integer|nil count
---@return coderunner.pg.Error|nil err
function Executor:copy_in(sql, rows) end

---@class coderunner.pg.CopyOutOptions
---@field raw? boolean  yield each line as sent (newline included) instead of an array of fields

--- Runs COPY ... TO STDOUT; iterates rows as arrays of text (NULL as pg.null),
--- or raw lines. `for row in assert(x:copy_out(sql)) do ... end`
---@param sql coderunner.pg.Statement
---@param opts? coderunner.pg.CopyOutOptions
---@return (fun(state: coderunner.pg.Rows): (string[]|string|nil))|nil iterator
---@return coderunner.pg.Rows|coderunner.pg.Error state_or_err
---@return nil
---@return coderunner.pg.Rows closing
function Executor:copy_out(sql, opts) end

--- Streams a query's rows one at a time (single-row mode), each decoded as
--- query decodes it. `for row in assert(x:rows(sql, ...)) do ... end`; a
--- server error in the middle raises the error object from the loop (a
--- timeout too: the deadline applies to each wait for the next rows).
---@param sql coderunner.pg.Statement
---@param ... coderunner.pg.Param
---@return (fun(state: coderunner.pg.Rows): table|nil)|nil iterator
---@return coderunner.pg.Rows|coderunner.pg.Error state_or_err
---@return nil
---@return coderunner.pg.Rows closing
function Executor:rows(sql, ...) end

---@class coderunner.pg.PipelineResults: (coderunner.pg.Result|coderunner.pg.Error)[]
---@field errors integer  how many statements failed

--- Runs fn(p); each p:query(sql, ...) is sent at once (pipeline mode); the
--- results are read, in order, when fn returns. Past the deadline (opts.timeout,
--- else query_timeout) returns nil, err (kind timeout) with err.results.
---@param fn fun(p: coderunner.pg.Pipeline)
---@param opts? coderunner.pg.PipelineOptions
---@return coderunner.pg.PipelineResults|nil results
---@return coderunner.pg.Error|nil err
function Executor:pipeline(fn, opts) end

--- The statements { {sql, arg1, ...}, ... } in one pipeline. A bad entry
--- returns nil, err before anything is sent; past the deadline, nil, err
--- (kind timeout) with err.results.
---@param list table[]
---@param opts? coderunner.pg.PipelineOptions
---@return coderunner.pg.PipelineResults|nil results
---@return coderunner.pg.Error|nil err
function Executor:batch(list, opts) end

---@class coderunner.pg.PipelineOptions
---@field timeout? number  seconds for the whole pipeline, overriding query_timeout (0: none)

---@class coderunner.pg.Pipeline
local Pipeline = {}
--- Sends one statement; returns its index in the results. Raises on a
--- parameter that cannot be encoded.
---@param sql string
---@param ... coderunner.pg.Param
---@return integer
function Pipeline:query(sql, ...) end

---@class coderunner.pg.Rows  an open rows or copy_out iterator
local Rows = {}
--- Ends the stream now (cancelling the rest of the statement). Idempotent.
function Rows:close() end

---@class coderunner.pg.Conn: coderunner.pg.Executor
local Conn = {}
---@return boolean
function Conn:close() end
---@return boolean
function Conn:is_closed() end
--- {size, entries, hits, misses, replans, binary_results}
---@return table
function Conn:cache_stats() end
--- nil, err (invalid_input) for a NUL byte or text invalid in the client encoding.
---@param s string
---@return string|nil quoted
---@return coderunner.pg.Error|nil err
function Conn:escape_identifier(s) end
--- nil, err (invalid_input) for a NUL byte or text invalid in the client encoding.
---@param s string
---@return string|nil quoted
---@return coderunner.pg.Error|nil err
function Conn:escape_literal(s) end
--- A number naming this connection to pg.cancel from any thread or Lua state of the process.
---@return integer
function Conn:cancel_token() end
--- pg.cancel(conn:cancel_token())
---@return boolean|nil sent
---@return coderunner.pg.Error|nil err
function Conn:cancel() end
--- A libpq connection option in use (sslmode, keepalives_idle, ...); never the password.
---@param name string
---@return string|nil
function Conn:option(name) end
--- Server parameters: server_version, ...
---@param name string
---@return string|nil
function Conn:parameter(name) end
--- PQserverVersion(), e.g. 150004
---@return integer
function Conn:server_version() end
--- The server process id of this connection.
---@return integer
function Conn:backend_pid() end
--- LISTEN on a channel (quoted as an identifier).
---@param channel string
---@return true|nil ok
---@return coderunner.pg.Error|nil err
function Conn:listen(channel) end
--- UNLISTEN a channel.
---@param channel string
---@return true|nil ok
---@return coderunner.pg.Error|nil err
function Conn:unlisten(channel) end

---@class coderunner.pg.Notification
---@field channel string
---@field payload string
---@field pid integer  the sending backend's process id

--- The next notification; nil when timeout seconds pass (none: wait for
--- ever; 0: only look); nil, err when the connection is lost. Blocks the
--- calling thread in poll().
---@param timeout? number
---@return coderunner.pg.Notification|nil note
---@return coderunner.pg.Error|nil err
function Conn:wait_notification(timeout) end

---@class coderunner.pg.Tx: coderunner.pg.Executor
local Tx = {}
---@return true|nil ok
---@return coderunner.pg.Error|nil err
function Tx:commit() end
---@return true|nil ok
---@return coderunner.pg.Error|nil err
function Tx:rollback() end
--- "active", "committed", "rolled_back", or "ended" (an enclosing level ended it first)
---@return string
function Tx:status() end

---@class coderunner.pg.PoolStats
---@field total integer
---@field idle integer
---@field busy integer
---@field waiting integer
---@field min integer
---@field max integer
---@field queries integer
---@field slow_queries integer
---@field errors table<string, integer>  by kind
---@field connections_opened integer
---@field connections_closed integer
---@field acquire_timeouts integer
---@field cache_hits integer
---@field cache_misses integer
---@field last_error? string  the last failure to connect, redacted
---@field resets integer       session resets (DISCARD ALL) before lending
---@field leaks integer        connections collected without release
---@field connect_attempts integer
---@field consecutive_connect_failures integer
---@field connect_backoff number  seconds until the next connect attempt (0: none waits)
---@field name? string        a named pool's name

---@class coderunner.pg.Pool: coderunner.pg.Executor
local Pool = {}
--- Borrows a connection; give it back with release (or let it be collected).
---@return coderunner.pg.Conn|nil conn
---@return coderunner.pg.Error|nil err
function Pool:acquire() end
---@param conn coderunner.pg.Conn
function Pool:release(conn) end
---@return coderunner.pg.PoolStats
function Pool:stats() end
--- Closes idle connections past idle_timeout or max_lifetime, and opens up to min.
function Pool:maintain() end
--- True once closed here, or (a named pool) by any Lua state holding it.
---@return boolean
function Pool:is_closed() end
--- Closes the pool: idle connections now, busy ones when released. Waits up to
--- timeout seconds for busy ones; returns true when all are closed. A named pool
--- closes for every Lua state holding it, and its name is free for a new pool.
---@param timeout? number
---@return boolean
function Pool:close(timeout) end

return pg
