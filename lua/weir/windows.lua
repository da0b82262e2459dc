--- Event-time windows on a keyed stream: assigners (tumbling, sliding,
-- session) and the window operator with its window functions (reduce,
-- aggregate, apply), allowed lateness and the side output of late records.
--
-- A key's state maps each of its windows' start to { start, e = end
-- (exclusive), acc }. A window fires when the watermark reaches end - 1
-- (an event-time timer) and is purged at end - 1 + allowed_lateness;
-- records for a fired window that is not yet purged re-fire it with the
-- update. A record whose windows are all purged is late: it goes to the
-- side output (`:late()`) and is counted, never silently dropped.
--
-- Firing and merging cost O(log n) per window however many windows a key
-- has pending (as it has when the watermark lags far behind its records,
-- e.g. behind a file reader that started years later in event time): each
-- entry keeps, in memory only, its windows by firing time and by purge
-- time (and session windows ordered by end), built from the stored form
-- on first use after a restore, so checkpoints keep the form above.
-- inst.windows_visited counts the windows firing and merging looked at,
-- so that specs can check there are no rescans.
local errors = require "weir.errors"
local operators = require "weir.operators"
local Skiplist = require "weir.skiplist"

local M = {}

local floor = math.floor

local function check_ms(what, v, level)
  if type(v) ~= "number" or v ~= v or v <= 0 or v == math.huge then
    error(string.format("%s must be a positive number of ms, got %s", what,
      tostring(v)), level + 1)
  end
end

--- Tumbling windows of size_ms: [k*size, (k+1)*size). Raises unless
-- size_ms > 0.
function M.tumbling(size_ms)
  check_ms("weir.tumbling(size_ms): size_ms", size_ms, 2)
  return { kind = "tumbling", size = size_ms, slide = size_ms }
end

--- Sliding windows of size_ms starting every slide_ms (each record lands
-- in size/slide windows). Raises unless 0 < slide_ms <= size_ms.
function M.sliding(size_ms, slide_ms)
  check_ms("weir.sliding(size_ms, slide_ms): size_ms", size_ms, 2)
  check_ms("weir.sliding(size_ms, slide_ms): slide_ms", slide_ms, 2)
  if slide_ms > size_ms then
    error(string.format("weir.sliding(size_ms, slide_ms): slide_ms (%s) is "
      .. "larger than size_ms (%s); windows would leave gaps", slide_ms,
      size_ms), 2)
  end
  return { kind = "sliding", size = size_ms, slide = slide_ms }
end

--- Session windows: a key's records at most gap_ms apart share a window
-- [first, last + gap) (windows that touch merge, as in Flink). Raises
-- unless gap_ms > 0.
function M.session(gap_ms)
  check_ms("weir.session(gap_ms): gap_ms", gap_ms, 2)
  return { kind = "session", gap = gap_ms }
end

-- The accumulator functions of a window node: init() -> acc,
-- add(acc, record) -> acc, merge(a, b) -> acc, result(acc, ctx) emits.
local function window_functions(node, emit_value)
  local f = node.functions
  if f.kind == "reduce" then
    local fn = errors.register(f.fn, node)
    return function() return nil end,
      function(acc, record)
        if acc == nil then return record end
        return fn(acc, record)
      end,
      fn,
      function(acc) emit_value(acc) end
  elseif f.kind == "aggregate" then
    local init = errors.register(f.init, node)
    local add = errors.register(f.add, node)
    local merge = errors.register(f.merge, node)
    local result = errors.register(f.result, node)
    return init, add, merge, function(acc, ctx)
      if result then emit_value(result(acc, ctx)) else emit_value(acc) end
    end
  else -- apply
    local fn = errors.register(f.fn, node)
    return function() return {} end,
      function(acc, record)
        acc[#acc + 1] = record
        return acc
      end,
      function(a, b)
        for i = 1, #b do a[#a + 1] = b[i] end
        return a
      end,
      function(acc, ctx) fn(ctx, acc) end
  end
end

-- The in-memory index of a key's windows (entry.windows_index, not in
-- checkpoints; built from entry.state on first use, so after a restore):
-- fires[t] and purges[t] are the window whose firing (purge) timer is at
-- t; for session windows, ends orders them by end. Returns add(ix, w
-- [, keep_end]), remove(ix, w [, keep_end]) and of(entry) -> ix; keep_end
-- leaves ends as it is, for a window whose end changes in place.
local function window_index(lateness, session)
  local function index_add(ix, w, keep_end)
    ix.fires[w.e - 1], ix.purges[w.e - 1 + lateness] = w, w
    if session and not keep_end then ix.ends:insert(w.e, w) end
  end
  local function index_remove(ix, w, keep_end)
    local t = w.e - 1
    if ix.fires[t] == w then ix.fires[t] = nil end
    if ix.purges[t + lateness] == w then ix.purges[t + lateness] = nil end
    if session and not keep_end then ix.ends:remove(w.e) end
  end
  local function index_of(e)
    local ix = e.windows_index
    if ix then return ix end
    ix = { fires = {}, purges = {}, ends = session and Skiplist.new() }
    for _, w in pairs(e.state) do index_add(ix, w) end
    e.windows_index = ix
    return ix
  end
  return index_add, index_remove, index_of
end

-- The push of a session window operator; op holds the operator's pieces
-- (see M.window).
local function session_push(op)
  local inst, state, gap, lateness = op.inst, op.state, op.gap, op.lateness
  local lookup, init, add, merge = operators.lookup(state), op.init, op.add,
    op.merge
  local fire, late, add_timers = op.fire, op.late, op.add_timers
  local delete_timers, index_add = op.delete_timers, op.index_add
  local index_remove, index_of = op.index_remove, op.index_of
  -- The one window a record touches (node's) becomes [first, last)
  -- and takes the record: the common case, done in place, as the window
  -- keeps its place among the key's windows ordered by end.
  local function grow(e, ix, node, first, last, record)
    local w = node.value
    if first ~= w.start or last ~= w.e then
      delete_timers(e, w)
      index_remove(ix, w, true)
      e.state[w.start] = nil
      w.start, w.e, node.key = first, last, last
      e.state[first] = w
      index_add(ix, w, true)
      add_timers(e, w)
    end
    w.acc = add(w.acc, record)
    if last - 1 <= inst.current then fire(e, w) end
  end

  return errors.register(function(record, ts, key)
    if ts == nil then error(errors.messages.no_timestamp, 0) end
    local e = lookup(key)
    local windows, ix = e.state, index_of(e)
    -- A key's windows are disjoint, so ordered by end they are ordered
    -- by start too: those the record's window [ts, ts + gap) touches,
    -- which merge with it, follow the first that ends at or after ts.
    local first, last, overlapping = ts, ts + gap, {}
    local found = ix.ends:ceiling(ts)
    local node = found
    while node do
      local w = node.value
      inst.windows_visited = inst.windows_visited + 1
      if w.start > ts + gap then break end
      overlapping[#overlapping + 1] = w
      if w.start < first then first = w.start end
      if w.e > last then last = w.e end
      node = Skiplist.after(node)
    end
    local watermark = inst.current
    if last - 1 + lateness <= watermark then return late(record, ts) end
    if #overlapping == 1 then
      return grow(e, ix, found, first, last, record)
    end
    local acc
    for _, w in ipairs(overlapping) do
      if acc == nil then acc = w.acc else acc = merge(acc, w.acc) end
      delete_timers(e, w)
      index_remove(ix, w)
      windows[w.start] = nil
    end
    if acc == nil then acc = init() end
    local merged = { start = first, e = last, acc = add(acc, record) }
    windows[first] = merged
    index_add(ix, merged)
    add_timers(e, merged)
    if last - 1 <= watermark then fire(e, merged) end
  end, op.node)
end

-- Sliding windows with a merge function keep one accumulator per pane
-- (slide-sized slice) instead of one per window, so a record costs one
-- add however many windows hold it; a window merges its panes when it
-- fires. Returns the operator's on_timer(e, t) and a function that makes
-- its push once op also holds inst, state, timers and late (see M.window).
local function pane_functions(op)
  local size, slide, lateness = op.size, op.slide, op.lateness
  local init, add, merge, fire = op.init, op.add, op.merge, op.fire
  -- Fires the window [s, s + size) from the panes it holds, if any.
  local function fire_panes(e, s)
    local acc, any = init(), false
    for p = s, s + size - slide, slide do
      local pane = e.state[p]
      if pane then
        acc = merge(acc, pane.acc)
        any = true
      end
    end
    if any then fire(e, { start = s, e = s + size, acc = acc }) end
  end

  -- A timer at t is the firing time of window t + 1 - size and the purge
  -- time of window t + 1 - size - lateness (whose first pane no later
  -- window holds), for windows aligned to the slide.
  local function on_pane_timer(e, t)
    local s = t + 1 - size
    if s % slide == 0 then fire_panes(e, s) end
    if (s - lateness) % slide == 0 then e.state[s - lateness] = nil end
  end

  local function pane_push()
    local inst, state, timers = op.inst, op.state, op.timers
    local lookup, late = operators.lookup(state), op.late
    return errors.register(function(record, ts, key)
      if ts == nil then error(errors.messages.no_timestamp, 0) end
      local watermark = inst.current
      local p = ts - ts % slide
      -- The newest window holding the pane starts at p.
      if p + size - 1 + lateness <= watermark then return late(record, ts) end
      local e = lookup(key)
      local pane = e.state[p]
      if not pane then
        pane = { start = p, acc = init() }
        e.state[p] = pane
        for s = p - size + slide, p, slide do
          if s + size - 1 > watermark then timers:add(e, s + size - 1) end
          if lateness > 0 and s + size - 1 + lateness > watermark then
            timers:add(e, s + size - 1 + lateness)
          end
        end
      end
      pane.acc = add(pane.acc, record)
      -- Windows that fired but are not purged yet fire again.
      for s = p - size + slide, p, slide do
        local last = s + size - 1
        if last <= watermark and last + lateness > watermark then
          fire_panes(e, s)
        end
      end
    end, op.node)
  end
  return on_pane_timer, pane_push
end

--- The window operator: make(node, emit, env) as in weir.operators.
function M.window(node, emit, env)
  local assigner, lateness = node.assigner, node.allowed_lateness
  local late_emit, stats = env.side.late, env.stats
  local ctx = {}
  local current_ts
  local function emit_value(v)
    if v ~= nil then emit(v, current_ts) end
  end
  function ctx.emit(_, v) emit(v, current_ts) end
  local init, add, merge, result = window_functions(node, emit_value)

  local state, timers, inst
  local function fire(e, w)
    -- A table per firing: a result may keep ctx.window.
    ctx.key, ctx.window = e.key, { start = w.start, ["end"] = w.e }
    current_ts = w.e - 1
    result(w.acc, ctx)
  end
  -- The firing timer of a window created after the watermark passed its
  -- end is left out: the caller fires it at once.
  local function add_timers(e, w)
    if w.e - 1 > inst.current then timers:add(e, w.e - 1) end
    if lateness > 0 then timers:add(e, w.e - 1 + lateness) end
  end
  local function delete_timers(e, w)
    timers:delete(e, w.e - 1)
    timers:delete(e, w.e - 1 + lateness)
  end
  local size, slide = assigner.size, assigner.slide
  -- Sliding windows with a merge function use panes (pane_functions).
  local panes = assigner.kind == "sliding" and merge ~= nil
    and node.functions.kind ~= "reduce"

  local index_add, index_remove, index_of =
    window_index(lateness, assigner.kind == "session")

  local function on_timer(e, t)
    local ix = index_of(e)
    local w = ix.fires[t]
    if w then
      inst.windows_visited = inst.windows_visited + 1
      ix.fires[t] = nil
      fire(e, w)
    end
    w = ix.purges[t]
    if w then
      inst.windows_visited = inst.windows_visited + 1
      index_remove(ix, w)
      e.state[w.start] = nil
    end
  end

  local pane_op = panes and { node = node, size = size, slide = slide,
    lateness = lateness, init = init, add = add, merge = merge, fire = fire }
  local on_pane_timer, pane_push
  if panes then on_pane_timer, pane_push = pane_functions(pane_op) end
  inst, state, timers = operators.keyed(node, env,
    function() return {} end, panes and on_pane_timer or on_timer)
  local lookup = operators.lookup(state)
  inst.windows_visited = 0

  local function late(record, ts)
    stats.late_records = stats.late_records + 1
    if late_emit then late_emit(record, ts) end
  end

  -- Adds record to the window [start, start + size) of entry e unless the
  -- window was purged; returns whether it did.
  local function add_to(e, start, wend, record)
    local watermark = inst.current
    if wend - 1 + lateness <= watermark then return false end
    local windows = e.state
    local w = windows[start]
    if not w then
      w = { start = start, e = wend, acc = init() }
      windows[start] = w
      index_add(index_of(e), w)
      add_timers(e, w)
    end
    w.acc = add(w.acc, record)
    if wend - 1 <= watermark then fire(e, w) end
    return true
  end

  if panes then
    pane_op.inst, pane_op.state, pane_op.timers = inst, state, timers
    pane_op.late = late
    inst.push = pane_push()
  elseif assigner.kind == "tumbling" then
    inst.push = errors.register(function(record, ts, key)
      if ts == nil then error(errors.messages.no_timestamp, 0) end
      local e = lookup(key)
      local start = ts - ts % size
      if not add_to(e, start, start + size, record) then late(record, ts) end
    end, node)
  elseif assigner.kind == "sliding" then
    inst.push = errors.register(function(record, ts, key)
      if ts == nil then error(errors.messages.no_timestamp, 0) end
      local e = lookup(key)
      local any = false
      local start = ts - ts % slide
      while start > ts - size do
        if add_to(e, start, start + size, record) then any = true end
        start = start - slide
      end
      if not any then late(record, ts) end
    end, node)
  else
    if not merge then
      error(string.format("%s: session windows merge; give aggregate a "
        .. "merge function", errors.describe(node)), 0)
    end
    inst.push = session_push { node = node, inst = inst, state = state,
      gap = assigner.gap, lateness = lateness, init = init, add = add,
      merge = merge, fire = fire, late = late, add_timers = add_timers,
      delete_timers = delete_timers, index_add = index_add,
      index_remove = index_remove, index_of = index_of }
  end
  return inst
end

--- The window join (Stream:join): per key and window, the records of each
-- side, { start, e = end (exclusive), l = { records }, r = { records } },
-- in the key's state; when the watermark reaches end - 1 it emits
-- apply(l, r) (or { l, r }) for every pair, left records in arrival order
-- outer, then drops the window. inst.inputs = { push left, push right }.
-- As in M.window, each entry keeps its windows by firing time in memory
-- (e.windows_index, built from e.state on first use after a restore).
function M.window_join(node, emit, env)
  local assigner, stats = node.assigner, env.stats
  local size, slide = assigner.size, assigner.slide
  local apply = node.apply and errors.register(node.apply, node)

  local inst
  local function index_of(e)
    local ix = e.windows_index
    if ix then return ix end
    ix = {}
    for _, w in pairs(e.state) do ix[w.start + size - 1] = w end
    e.windows_index = ix
    return ix
  end

  local function on_timer(e, t)
    local ix = index_of(e)
    local w = ix[t]
    if not w then return end
    inst.windows_visited = inst.windows_visited + 1
    ix[t] = nil
    e.state[w.start] = nil
    local ls, rs = w.l, w.r
    for i = 1, #ls do
      local l = ls[i]
      for j = 1, #rs do
        local r = rs[j]
        if apply then emit(apply(l, r), t) else emit({ l, r }, t) end
      end
    end
  end

  local state, timers
  inst, state, timers = operators.keyed(node, env,
    function() return {} end, on_timer)
  local lookup = operators.lookup(state)
  inst.windows_visited = 0

  -- Adds record to side ("l" or "r") of each of its windows that has not
  -- fired; a record whose windows all fired is late (counted, dropped).
  local function add(side, record, ts, key)
    if ts == nil then error(errors.messages.no_timestamp, 0) end
    local watermark = inst.current
    local e, any = nil, false
    local start = ts - ts % slide
    while start > ts - size do
      local last = start + size - 1
      if last > watermark then
        e = e or lookup(key)
        local w = e.state[start]
        if not w then
          w = { start = start, e = start + size, l = {}, r = {} }
          e.state[start] = w
          index_of(e)[last] = w
          timers:add(e, last)
        end
        local list = w[side]
        list[#list + 1] = record
        any = true
      end
      start = start - slide
    end
    if not any then stats.late_records = stats.late_records + 1 end
  end

  inst.inputs = {
    errors.register(function(record, ts, key) add("l", record, ts, key) end,
      node),
    errors.register(function(record, ts, key) add("r", record, ts, key) end,
      node),
  }
  return inst
end

return M
