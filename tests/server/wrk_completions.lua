-- wrk load script for `lightboat serve`: non-streaming completions of 8 tokens (run by
-- load_test.py; by hand: wrk -t2 -c16 -d60s -s tests/server/wrk_completions.lua URL).
-- Counts the statuses (429 is intended under overload; anything else but 200 is an error) and
-- prints one "status N: COUNT" line per status at the end.
wrk.method = "POST"
wrk.path = "/v1/completions"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"prompt":"Once upon a time","max_tokens":8,"temperature":0.8}'

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
