-- Sessions: the visits of each client of a web site, from an Apache access
-- log (combined log format). A client's requests belong to one session
-- while each comes at most 30 minutes after the one before it.
--   weir run examples/sessions.lua LOGFILE OUTDIR
--   weir run examples/sessions.lua spec/fixtures/apache_logs_slice.log \
--     out/sessions
--
-- OUTDIR/part-* holds one tab-separated line per session: client IP, time
-- of its first request (UTC), number of requests, and seconds from the
-- first request to the last; on the 10,000-line log of elastic/examples,
-- for instance:
--   83.149.9.216\t2015-05-17T10:05:00\t23\t59
-- (That log has requests only in minute 5 of each hour, so none of its
-- sessions lasts longer than a minute.)
-- Lines not in the combined log format are skipped by a filter.
--
-- Each request opens a session window [t, t + 30 min); windows that
-- overlap or touch merge, so a request exactly 30 minutes after the
-- previous one continues its session.
-- The logic lives in examples/sessions_logic.lua, tested by
-- examples/sessions_spec.lua.
local weir = require "weir"
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local sessions = dofile(here .. "sessions_logic.lua")

local p = weir.pipeline { name = "sessions" }
sessions.from_lines(p:read_lines(arg[1]):uid("lines"))
  :write_lines(arg[2]):uid("output")
p:run()
