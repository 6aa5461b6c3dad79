-- wrk load script for `lightboat serve` (not run by CI; see README "Load test").
--   wrk -t2 -c8 -d20s -s tests/server/wrk_chat.lua http://127.0.0.1:8080
-- Non-streaming chat completions of 16 tokens; counts the statuses (429s are intended under
-- overload, anything else but 200 is an error) and prints them at the end.
wrk.method = "POST"
wrk.path = "/v1/chat/completions"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"messages":[{"role":"user","content":"Tell me a story."}],"max_tokens":16}'

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  counts = {}
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
end

function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    local c = t:get("counts")
    for status, n in pairs(c) do total[status] = (total[status] or 0) + n end
  end
  for status, n in pairs(total) do io.write(string.format("status %d: %d\n", status, n)) end
end
