-- Word count: the words of a text file and how often each occurs.
--   weir run examples/wordcount.lua examples/data/tinyshakespeare.txt out/wordcount
local weir = require "weir"

local p = weir.pipeline { name = "wordcount" }
p:read_lines(arg[1]):uid("lines")
  :flat_map(function(line, emit)
    for w in line:gmatch("%a+") do emit(w:lower()) end
  end)
  :key_by(function(word) return word end)
  :process(function(ctx, word) ctx.state.n = (ctx.state.n or 0) + 1 end,
           { finish = function(ctx) ctx:emit(ctx.key .. "\t" .. ctx.state.n) end })
  :uid("counts")
  :write_lines(arg[2]):uid("output")
p:run()
