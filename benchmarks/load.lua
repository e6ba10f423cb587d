-- wrk script: cycles through pre-signed requests (one per line: path \t body) and checks each reply.
-- Each thread takes every n-th line so MsgIds stay unique across threads.
local reqs = {}
local idx = 0
local bad = 0
local expect = os.getenv("BENCH_EXPECT") or "success"
local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

function init(args)
  local file = os.getenv("BENCH_REQUESTS")
  local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
  local n = 0
  for line in io.lines(file) do
    if n % nthreads == tid then
      local path, body = line:match("^(.-)\t(.*)$")
      table.insert(reqs, wrk.format("POST", path, {["Content-Type"] = "text/xml"}, body))
    end
    n = n + 1
  end
end

function request()
  idx = idx + 1
  if idx > #reqs then idx = 1 end
  return reqs[idx]
end

function response(status, headers, body)
  if status ~= 200 or body == nil or body == "" or not string.find(body, expect, 1, true) then
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local total_bad = 0
  for _, t in ipairs(threads) do
    total_bad = total_bad + (t:get("bad") or 0)
  end
  io.write(string.format("RESULT requests=%d seconds=%.3f p50_us=%d p99_us=%d errors=%d bad=%d\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50), latency:percentile(99),
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.status + summary.errors.timeout,
    total_bad))
end
