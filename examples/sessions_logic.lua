-- The logic of examples/sessions.lua, apart from where its lines come
-- from and go to, so that examples/sessions_spec.lua can test it with
-- weir.testing: parse(line) reads a request, sessions(requests) groups a
-- stream of requests into sessions.
local weir = require "weir"

local M = {}

-- host ident user [time] "request" status bytes "referer" "user agent".
local COMBINED = '^(%S+) %S+ %S+ %[([^%]]*)%] "[^"]*" %d%d%d %S+ '
  .. '"[^"]*" "[^"]*"$'

local MINUTE = 60 * 1000
M.GAP_MS = 30 * MINUTE

--- The request of a combined-format log line: { ip, ts = ms since the
-- epoch }, or nil for a line in another format.
function M.parse(line)
  local ip, time = line:match(COMBINED)
  if not ip then return nil end
  return { ip = ip, ts = weir.time.parse_clf(time) }
end

--- A session as the aggregate keeps it, and its functions.
M.aggregate = {
  init = function()
    return { n = 0, first = math.huge, last = -math.huge }
  end,
  add = function(s, request)
    return { n = s.n + 1, first = math.min(s.first, request.ts),
             last = math.max(s.last, request.ts) }
  end,
  -- A request that bridges two sessions joins them into one.
  merge = function(a, b)
    return { n = a.n + b.n, first = math.min(a.first, b.first),
             last = math.max(a.last, b.last) }
  end,
  -- "ip<TAB>first request (UTC)<TAB>requests<TAB>seconds first to last".
  result = function(s, ctx)
    return string.format("%s\t%s\t%d\t%d", ctx.key,
      os.date("!%Y-%m-%dT%H:%M:%S", s.first / 1000), s.n,
      (s.last - s.first) / 1000)
  end,
}

--- The sessions of a stream of requests with event time: keyed by client,
-- session windows of GAP_MS.
function M.sessions(requests)
  return requests
    :key_by(function(request) return request.ip end)
    :window(weir.session(M.GAP_MS))
    :aggregate(M.aggregate):uid("sessions")
end

--- The whole pipeline from log lines to session lines: parse, event time
-- (the log is in order by minute but not within a minute, so the
-- watermark trails the latest time seen by a minute), sessions.
function M.from_lines(lines)
  return M.sessions(lines
    :filter(function(line) return M.parse(line) ~= nil end)
    :map(M.parse)
    :with_timestamps(function(request) return request.ts end,
      { max_out_of_orderness = MINUTE }):uid("timestamps"))
end

return M
