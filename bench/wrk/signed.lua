-- Replays precomputed, signed Twilio webhooks, each one once, as fast as wrk can send them.
--
-- The requests file (CALLFLOW_WRK_REQUESTS) holds one request a line:
--     path<TAB>X-Twilio-Signature<TAB>form-encoded body
-- Thread i of n (CALLFLOW_WRK_THREADS) sends lines i, i+n, i+2n, ... in order, so no two
-- requests share a CallSid. done() prints one line, "WRK_RESULT {json}", with what wrk
-- measured and how many requests each thread sent (bench/run.py reads it). "wrapped" is
-- non-zero if a thread ran out of requests and started again (the run is then too long
-- for its file, and bench/run.py says so).

local threads = {}
local next_id = 1

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  local path = os.getenv("CALLFLOW_WRK_REQUESTS")
  local count = tonumber(os.getenv("CALLFLOW_WRK_THREADS"))
  local headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
  prepared = {}
  local n = 0
  for line in io.lines(path) do
    if n % count == id - 1 then
      local target, signature, body = line:match("^([^\t]*)\t([^\t]*)\t(.*)$")
      headers["X-Twilio-Signature"] = signature
      prepared[#prepared + 1] = wrk.format("POST", target, headers, body)
    end
    n = n + 1
  end
  sent = 0
  wrapped = 0
end

function request()
  sent = sent + 1
  if sent > #prepared then
    wrapped = wrapped + 1
  end
  return prepared[((sent - 1) % #prepared) + 1]
end

function done(summary, latency, requests)
  local parts, wraps = {}, 0
  for _, thread in ipairs(threads) do
    parts[#parts + 1] = string.format('"%d": %d', thread:get("id"), thread:get("sent"))
    wraps = wraps + thread:get("wrapped")
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_RESULT {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d}, ' ..
    '"sent": {%s}, "wrapped": %d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    table.concat(parts, ", "), wraps))
end
