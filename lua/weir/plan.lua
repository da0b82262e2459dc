--- The planner: turns a pipeline's graph into chains, tasks and channels.
--
-- Every operator has a parallelism (the pipeline's, or its own from
-- :parallelism(n)). An operator joins the chain of its input when it has
-- exactly one input with the same parallelism over a forward edge; a
-- keyed operator after key_by starts a chain of its own when its
-- parallelism is above 1, fed by a hash exchange on key groups. A union
-- starts a chain fed by every input. A task is one subtask of a chain: it
-- runs the chain's operators by direct calls. A channel links a producing
-- task to a consuming one: forward (subtask i to i), hash (by key group)
-- or rebalance (round-robin). Nodes are visited in construction order,
-- which is a topological order.
local M = {}

local keyed_kinds = require("weir.kinds").with("keyed")

-- The edge from node `from` into `to`: "forward", "hash" or "rebalance".
local function edge_kind(from, to)
  if from.kind == "key_by" and keyed_kinds[to.kind] then
    return to.parallelism == 1 and from.parallelism == 1 and "forward"
      or "hash"
  end
  if from.parallelism == to.parallelism then return "forward" end
  return "rebalance"
end

--- Plans a pipeline at a default parallelism.
-- @return { chains = { { id, head = node, nodes = { node... },
--     parallelism = n, inputs = { edge... } } },
--   edges = { { id, from = node, to = node, kind } },
--   tasks = { { id, chain = chain, subtask = i } } (subtasks 0-based),
--   max_parallelism = the largest chain parallelism }
-- Each node gets node.chain and node.parallelism. Raises if the pipeline
-- has no source, or a parallelism exceeds max_parallelism.
function M.plan(p, parallelism)
  local chains, edges, tasks = {}, {}, {}
  local maxp = p.options.max_parallelism
  for _, node in ipairs(p.nodes) do
    node.parallelism = node.fixed_parallelism or node.own_parallelism
      or parallelism
    if node.parallelism > maxp then
      error(string.format("%s: parallelism %d is above max_parallelism %d",
        node.kind, node.parallelism, maxp), 0)
    end
    local input = node.inputs[1]
    if #node.inputs == 1 and edge_kind(input, node) == "forward" then
      node.chain = input.chain
    else
      local chain = { id = #chains + 1, head = node, nodes = {}, inputs = {},
        parallelism = node.parallelism }
      chains[#chains + 1] = chain
      node.chain = chain
      for k, from in ipairs(node.inputs) do
        local edge = { id = #edges + 1, from = from, to = node,
          kind = edge_kind(from, node), input = k }
        edges[#edges + 1] = edge
        chain.inputs[#chain.inputs + 1] = edge
      end
    end
    local t = node.chain.nodes
    t[#t + 1] = node
  end
  if #chains == 0 then
    error("the pipeline has no source; start it with p:read_lines(path), "
      .. "p:sequence(first, last) or p:nexmark{...}", 0)
  end
  local widest = 1
  for _, chain in ipairs(chains) do
    for i = 0, chain.parallelism - 1 do
      tasks[#tasks + 1] = { id = #tasks + 1, chain = chain, subtask = i }
    end
    if chain.parallelism > widest then widest = chain.parallelism end
  end
  return { chains = chains, edges = edges, tasks = tasks,
           max_parallelism = widest, default_parallelism = parallelism }
end

--- The producing subtasks of `edge` that feed consumer subtask j, in
-- order (forward: only j; otherwise all).
function M.producers(edge, j)
  if edge.kind == "forward" then return { j } end
  local out = {}
  for i = 0, edge.from.parallelism - 1 do out[#out + 1] = i end
  return out
end

return M
