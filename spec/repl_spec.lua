local h = require "helpers"
local repl = require "weir.repl"

-- Runs `weir repl` with input on its stdin, through a pipe (or, with
-- as_file, redirected from a regular file); env is prepended to the
-- command ("NAME=value ..."). Returns { status, stdout, stderr }.
local function run_repl(input, as_file, env)
  local dir = h.tmpdir()
  h.write_file(dir .. "/in", input)
  local feed = as_file and "" or "cat " .. dir .. "/in | "
  local redirect = as_file and " <" .. dir .. "/in" or ""
  local _, status = h.sh(string.format("%s%s %s repl%s >%s/out 2>%s/err",
    feed, env or "", h.quote(h.weir), redirect, dir, dir))
  local r = { status = status, stdout = h.read_file(dir .. "/out"),
              stderr = h.read_file(dir .. "/err") }
  h.sh("rm -rf " .. h.quote(dir))
  return r
end

-- Runs `weir repl` on a pseudo-terminal (util-linux script) and types the
-- keys of each step once the terminal answered the previous step: by
-- default with a new prompt ("> " or ">> " ending the output); a step
-- { keys, after = pattern } waits for new output ending in pattern
-- instead. The last step should end the session. Returns { status,
-- output } where output is all the terminal showed; the session is bounded
-- by `timeout 20`. status is weir's own exit status, which a shell on the
-- terminal prints after it (a Ctrl-C reaches that shell too: it traps it).
local function terminal_session(steps, history)
  local dir = h.tmpdir()
  h.sh("mkfifo " .. dir .. "/keys")
  local repl_cmd = "sh -c " .. h.quote(string.format("trap : INT; env "
    .. "TERM=xterm WEIR_HISTORY=%s %s repl; echo \"[weir exited $?]\"",
    h.quote(history or ""), h.quote(h.weir)))
  local cmd = string.format("timeout 20 script -qfec %s /dev/null "
    .. "<%s/keys >%s/out 2>&1; echo $? >%s/status", h.quote(repl_cmd), dir,
    dir, dir)
  os.execute("sh -c " .. h.quote(cmd) .. " >/dev/null 2>&1 &")
  local fifo = assert(io.open(dir .. "/keys", "w"))
  local function output() return h.read_file(dir .. "/out") or "" end
  local seen, after = 0, "> $"
  for i, step in ipairs(steps) do
    h.wait_until(function()
      local out = output()
      return #out > seen and out:find(after)
    end, 15000, "the answer to step " .. (i - 1))
    seen = #output()
    fifo:write(type(step) == "table" and step[1] or step)
    fifo:flush()
    after = type(step) == "table" and step.after or "> $"
  end
  fifo:close()
  h.wait_until(function()
    local s = h.read_file(dir .. "/status")
    return s and tonumber(s:match("%d+"))
  end, 25000, "the terminal session to end")
  local out = output()
  local r = { status = tonumber(out:match("%[weir exited (%d+)%]")),
              output = out }
  h.sh("rm -rf " .. h.quote(dir))
  return r
end

describe("weir repl", function()
  describe("from a pipe", function()
    it("prints the value of an expression, without prompts", function()
      local r = run_repl("1 + 1\nprint(2 * 3)\n")
      assert.are.equal(0, r.status)
      assert.are.equal("2\n6\n", r.stdout)
      assert.are.equal("", r.stderr)
    end)

    it("runs statements, keeping globals from line to line", function()
      local r = run_repl("x = 20\nlocal y = 1\nx + 1\n")
      assert.are.equal("21\n", r.stdout)
    end)

    it("continues an unfinished chunk on the next lines", function()
      local r = run_repl("function sq(n)\n  return n * n\nend\nsq(7)\n"
        .. "t = {\n  1,\n}\n#t\n")
      assert.are.equal(0, r.status, r.stderr)
      assert.are.equal("49\n1\n", r.stdout)
    end)

    it("prints tables nested, with sorted keys, and marks cycles", function()
      local r = run_repl('{ b = { 2, 3 }, a = "x", [true] = 1 }\n'
        .. "t = { 1 }; t.self = t; return t\n")
      assert.are.equal('{ [true] = 1, a = "x", b = { 2, 3 } }\n'
        .. "{ 1, self = <cycle> }\n", r.stdout)
    end)

    it("prints several values separated by tabs; nothing for none, nil "
      .. "for nil", function()
      local r = run_repl('"a", 2, nil\nprint()\nnil\n')
      assert.are.equal('"a"\t2\tnil\n\nnil\n', r.stdout)
    end)

    it("prints an error on one line and goes on, ending with status 0",
      function()
        local r = run_repl("nosuch.field\nx = = 1\nerror('boom')\n40 + 2\n")
        assert.are.equal(0, r.status)
        assert.are.equal("42\n", r.stdout)
        assert.are.equal("stdin:1: attempt to index global 'nosuch' "
          .. "(a nil value)\nstdin:1: unexpected symbol near '='\n"
          .. "stdin:1: boom\n", r.stderr)
      end)

    it("adds a traceback to an error with WEIR_DEBUG set", function()
      local r = run_repl("error('boom')\n", false, "WEIR_DEBUG=1")
      assert.are.equal(0, r.status)
      assert.truthy(r.stderr:find("^stdin:1: boom\nstack traceback:\n"
        .. "%s+stdin:1: in main chunk\n"), r.stderr)
    end)

    it("help() lists what weir exports", function()
      local r = run_repl("help()\n")
      assert.are.equal(0, r.status, r.stderr)
      for _, name in ipairs({ "weir.pipeline(...)", "weir.tumbling(...)",
        "weir.time.{parse_clf, parse_iso, utc_ms}", 'weir.version = "' }) do
        assert.truthy(r.stdout:find(name, 1, true), name)
      end
    end)

    it("fails with status 1 when the input ends inside a chunk", function()
      local r = run_repl("print(1)\nfunction f()\n  return 1\n")
      assert.are.equal(1, r.status)
      assert.are.equal("1\n", r.stdout)
      assert.are.equal("weir: stdin:2: 'end' expected (to close 'function' "
        .. "at line 1) near '<eof>'\n", r.stderr)
    end)

    it("has weir loaded: a pipeline runs and collects", function()
      local r = run_repl(table.concat({
        "type(weir.tumbling)",
        "p = weir.pipeline { checkpoint_interval = 0 }",
        "out = p:sequence(1, 4):map(function(x) return x * x end):collect()",
        "stats = p:run()",
        "out",
      }, "\n") .. "\n")
      assert.are.equal(0, r.status, r.stderr)
      assert.are.equal('"function"\n{ 1, 4, 9, 16 }\n', r.stdout)
    end)

    it("reads a last line without a newline", function()
      assert.are.equal("3\n", run_repl("1 + 2").stdout)
    end)

    it("keeps the loop running while it waits for input, and reports a "
      .. "failing callback without stopping", function()
      local r = run_repl(table.concat({
        "core = require 'weir.core'",
        "t = core.timer(function() t:close(); error('from a timer') end)",
        "t:start(0)",
        "",
        "'still here'",
      }, "\n") .. "\n")
      assert.are.equal(0, r.status)
      assert.are.equal('"still here"\n', r.stdout)
      assert.truthy(r.stderr:find("weir: .*from a timer\n"), r.stderr)
    end)
  end)

  describe("running pipelines in the background", function()
    local dir
    setup(function()
      dir = h.tmpdir()
      h.repeat_file(h.shakespeare, dir .. "/input.txt", 3)
    end)
    teardown(function() h.sh("rm -rf " .. h.quote(dir)) end)

    it("starts one, lists it, takes a savepoint, cancels it, inspects "
      .. "the savepoint, and restoring it finishes exactly once", function()
        local script = table.concat({
          "function build(opts)",
          "  local p = weir.pipeline(opts)",
          "  p:read_lines(DIR .. '/input.txt'):uid('lines')",
          "    :flat_map(function(line, emit)",
          "      for w in line:gmatch('%a+') do emit({ w:lower(), 1 }) end",
          "    end)",
          "    :key_by(function(r) return r[1] end)",
          "    :reduce(function(a, r) return { a[1], a[2] + r[2] } end)",
          "    :uid('counts')",
          "    :write_lines(DIR .. '/out', function(r)",
          "      return r[1] .. '\\t' .. r[2] end):uid('output')",
          "  return p",
          "end",
          "job = build { name = 'running_count', checkpoint_dir = DIR .. "
            .. "'/ck', checkpoint_interval = 20 }:start()",
          "job:status().state",
          "core = require 'weir.core'",
          "while job:status().checkpoints < 1 do core.run_once() end",
          "jobs = weir.jobs(DIR .. '/ck')",
          "#jobs, jobs[1].job, jobs[1].pid == core.getpid()",
          "#job:metrics() > 0",
          "sp = job:savepoint(DIR .. '/sp')",
          "sp:match('/sp/savepoint%-running_count%-%d+$') ~= nil",
          "job:cancel()",
          "job:status().state",
          "weir.inspect(sp, { uid = 'lines' })",
          "weir.inspect(DIR .. '/nothing')",
          "build { name = 'running_count', checkpoint_dir = DIR .. '/ck', "
            .. "restore = sp }:run().restored_from == sp",
        }, "\n") .. "\n"
        local r = run_repl("DIR = " .. string.format("%q", dir) .. "\n"
          .. script)
        assert.are.equal(0, r.status, r.stderr)
        local out = r.stdout
        assert.matches('^"running"\n1\t"running_count"\ttrue\ntrue\n'
          .. 'true\n"cancelled"\n%-%- lines %(read_lines%), parallelism 1\n'
          .. 'subtask 0: { path = "[^"]+", ranges = { { %d+, [^}]+} } }\n'
          .. 'true\n$', out)
        assert.matches("weir: job 'running_count' cancelled after", r.stderr)
        assert.matches("cannot inspect [^\n]*/nothing", r.stderr)
        local reference, total = h.running_count_reference(dir
          .. "/input.txt")
        h.assert_exactly_once(dir .. "/out", reference, total)
      end)

    it("reports a background job's failure and keeps the prompt",
      function()
        local r = run_repl(table.concat({
          "p = weir.pipeline { name = 'bad', checkpoint_interval = 0, "
            .. "checkpoint_dir = " .. string.format("%q", dir) .. " }",
          "p:sequence(1, 10):map(function(x) if x == 5 then error('five') "
            .. "end return x end):collect()",
          "job = p:start()",
          "",
          "job:status().state, job:status().error",
          "'still here'",
        }, "\n") .. "\n")
        assert.are.equal(0, r.status, r.stderr)
        -- (Each line typed is a chunk of its own: stdin:1.)
        assert.matches("weir: job 'bad' failed after [%d.]+ s: map "
          .. "%(stdin:1%) failed on record 5: stdin:1: five", r.stderr)
        assert.matches('"failed"\t"map %(stdin:1%) failed on record 5: '
          .. 'stdin:1: five"\n"still here"\n$', r.stdout)
      end)
  end)

  it("reads a regular file on stdin", function()
    local r = run_repl("x = 2\nfor i = 1, 3 do\n  x = x * 2\nend\nx\n", true)
    assert.are.equal(0, r.status, r.stderr)
    assert.are.equal("16\n", r.stdout)
  end)

  it("--help prints its usage", function()
    local r = h.run_weir({ "repl", "--help" })
    assert.are.equal(0, r.status)
    assert.truthy(r.stdout:find("Usage: weir repl", 1, true))
  end)

  describe("on a terminal", function()
    it("completes weir.tumb<Tab> to weir.tumbling", function()
      local r = terminal_session({ "type(weir.tumb\t)\r", "\4" })
      assert.are.equal(0, r.status, r.output)
      assert.truthy(r.output:find('"function"', 1, true), r.output)
    end)

    it("completes methods after obj: through the metatable", function()
      local r = terminal_session({ "p = weir.pipeline()\r",
        'print(p:seq\t(1, 2) and "method" .. "-found")\r', "\4" })
      assert.are.equal(0, r.status, r.output)
      assert.truthy(r.output:find("method-found", 1, true), r.output)
    end)

    it("writes the history and recalls it in the next session with Up",
      function()
        local dir = h.tmpdir()
        local history = dir .. "/history"
        local first = terminal_session({ 'print("first" .. "session")\r',
          "\4" }, history)
        assert.are.equal(0, first.status, first.output)
        local saved = h.read_file(history)
        assert.truthy(saved and saved:find('print("first"', 1, true), saved)
        local second = terminal_session({ "\27[A\r", "\4" }, history)
        assert.are.equal(0, second.status, second.output)
        assert.truthy(second.output:find("firstsession", 1, true),
          second.output)
        h.sh("rm -rf " .. h.quote(dir))
      end)

    it("clears the line on Ctrl-C, also inside a chunk", function()
      local r = terminal_session({ { "nosuch_typed", after = "typed$" },
        "\3", "function f()\r", "\3", "40 + 2\r", "\4" })
      assert.are.equal(0, r.status, r.output)
      assert.truthy(r.output:find("\r\n42\r\n", 1, true), r.output)
      assert.falsy(r.output:find("attempt to", 1, true), r.output)
    end)

    it("runs the loop while it waits at the prompt, and reports an error "
      .. "of a loop callback without leaving the prompt", function()
      local r = terminal_session({
        { "t = require('weir.core').timer(function() t:close(); "
          .. "error('late' .. ' failure') end); t:start(20)\r",
          after = "late failure\r\n> $" },
        "40 + 2\r", "\4" })
      assert.are.equal(0, r.status, r.output)
      assert.truthy(r.output:find("weir: stdin:1: late failure\r\n> 40 + 2"
        .. "\r\n42\r\n", 1, true), r.output)
    end)

    it("warns once about a history file it cannot write", function()
      local r = terminal_session({ "1\r", "2\r", "\4" },
        "/nonexistent/dir/history")
      assert.are.equal(0, r.status, r.output)
      local _, n = r.output:gsub("weir: cannot write the history file "
        .. "/nonexistent/dir/history: no such file or directory", "")
      assert.are.equal(1, n, r.output)
    end)
  end)
end)

describe("weir.repl", function()
  describe(".show()", function()
    it("breaks a table too wide for one line into one entry per line",
      function()
        local t = { name = string.rep("n", 40), list = { 1, 2, 3 },
          nested = { deep = string.rep("d", 60) } }
        assert.are.equal(table.concat({
          "{",
          "  list = { 1, 2, 3 },",
          '  name = "' .. string.rep("n", 40) .. '",',
          "  nested = {",
          '    deep = "' .. string.rep("d", 60) .. '"',
          "  }",
          "}" }, "\n"), repl.show(t))
      end)

    it("quotes keywords used as keys and orders keys of any type",
      function()
        assert.are.equal('{ [false] = 2, [true] = 1, ["end"] = 3 }',
          repl.show({ [true] = 1, [false] = 2, ["end"] = 3 }))
      end)
  end)

  describe(".complete()", function()
    local env = { weir = require "weir", print = print,
      obj = setmetatable({ field = 1 }, { __index = { method = print,
        value = 2 } }) }

    it("completes globals and keywords", function()
      assert.same({ "print" }, repl.complete("pri", env))
      assert.same({ "function" }, repl.complete("func", env))
    end)

    it("completes fields of a table", function()
      assert.same({ "weir.tumbling" }, repl.complete("weir.tumb", env))
    end)

    it("offers fields and __index members after '.', functions after ':'",
      function()
        assert.same({ "obj.field", "obj.method", "obj.value" },
          repl.complete("obj.", env))
        assert.same({ "obj:method" }, repl.complete("obj:", env))
      end)

    it("completes nothing after an unknown name", function()
      assert.same({}, repl.complete("nosuch.x", env))
    end)
  end)
end)
