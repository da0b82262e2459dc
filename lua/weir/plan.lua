--- The planner: turns a pipeline's graph into tasks.
-- A task is a chain of operators run by direct calls. A task starts at
-- every source and at every operator with several inputs (after a union);
-- every other operator joins the task of its input. Edges between tasks
-- become channels, which carry record batches and in-band events
-- (barriers, end of input). Nodes are visited in construction order,
-- which is a topological order.
local M = {}

--- Plans a pipeline.
-- @return { tasks = { { id, head = node, nodes = { node... },
--   inputs = { { from = node, edge = n } }, source = node|nil } },
--   edges = { { from = node, to = node, task = consumer task } } }
-- Each node gets node.task. Raises if the pipeline has no source.
function M.plan(p)
  local tasks, edges = {}, {}
  for _, node in ipairs(p.nodes) do
    if #node.inputs ~= 1 then
      local task = { id = #tasks + 1, head = node, nodes = {}, inputs = {} }
      if #node.inputs == 0 then task.source = node end
      tasks[#tasks + 1] = task
      node.task = task
      for _, input in ipairs(node.inputs) do
        edges[#edges + 1] = { from = input, to = node, task = task }
        task.inputs[#task.inputs + 1] = { from = input, edge = #edges }
      end
    else
      node.task = node.inputs[1].task
    end
    local t = node.task.nodes
    t[#t + 1] = node
  end
  if #tasks == 0 then
    error("the pipeline has no source; start it with p:read_lines(path) "
      .. "or p:sequence(first, last)", 0)
  end
  return { tasks = tasks, edges = edges }
end

return M
