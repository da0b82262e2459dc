-- Word counts of the lines clients send over TCP (e.g. with nc), exactly
-- once: every line goes through a write-ahead log before it is counted,
-- and each client is told "ok <n>" once its first n lines are durable.
-- The counts are written when the job ends: `weir cancel socket_word_count`
-- drains what the log holds, then the job finishes.
--   weir run --checkpoint-interval 1000 examples/socket_word_count.lua \
--     127.0.0.1:9000 out/socket_words
--   printf 'to be or\nnot to be\n' | nc -N 127.0.0.1 9000    # ok 2
local weir = require "weir"

local p = weir.pipeline { name = "socket_word_count" }
p:read_socket { listen = arg[1], wal = true }:uid("socket")
  :flat_map(function(line, emit)
    for w in line:gmatch("%a+") do emit(w:lower()) end
  end)
  :key_by(function(word) return word end)
  :process(function(ctx) ctx.state.n = (ctx.state.n or 0) + 1 end,
           { finish = function(ctx) ctx:emit(ctx.key .. "\t" .. ctx.state.n) end })
  :uid("counts")
  :write_lines(arg[2]):uid("output")
p:run()
