-- wrk 4 script for the webhook benchmark (bench/src/webhook.rs): POSTs pre-signed webhook
-- deliveries, each with its own webhook-id and event id, never one twice.
--
--   wrk -t T -c C -d Ds -s bench/wrk/signed.lua http://HOST:PORT/webhook -- POOL MAX_DELAY_MS
--
-- Thread k (numbered by setup(), from 0) reads the pool file POOL.k, written by the harness
-- just before the run:
--   line 1: the webhook-timestamp every request of the pool was signed with
--   line 2: the body's text before the event id
--   line 3: the body's text after the event id
--   then one line per request: `<webhook-id> <event-id> <webhook-signature>`
-- Each line is used once. The file is read as requests go (buffered) rather than loaded in
-- init: wrk starts thread 0 while it still runs the next threads' init, so a slow init would
-- skew the clock, and a pool of millions of requests would sit in every thread's memory.
-- A thread whose slice runs out stops (wrk.thread:stop()) instead of reusing ids, and done()
-- reports it: the harness fails such a run.
--
-- MAX_DELAY_MS > 0 paces each connection: before each request it waits a random whole
-- number of milliseconds in [0, MAX_DELAY_MS] (mean MAX_DELAY_MS / 2), which spreads the
-- connections out instead of firing them in lockstep.
--
-- done() prints one machine-readable line, WRK_RESULT key=value ..., that the harness parses.

local threads = {}

function setup(thread)
   thread:set("tid", #threads)
   table.insert(threads, thread)
end

-- Per-thread state (globals so done() can read them with thread:get()).
used = 0
exhausted = 0

local pool, prefix, suffix, headers

function init(args)
   local name = args[1] .. "." .. tid
   pool = assert(io.open(name, "r"))
   pool:setvbuf("full", 1048576)
   local timestamp = pool:read("*l")
   prefix = pool:read("*l")
   suffix = pool:read("*l")
   assert(timestamp and prefix and suffix, "truncated pool header in " .. name)
   headers = {
      ["Content-Type"] = "application/json",
      ["webhook-timestamp"] = timestamp,
      ["x-composio-webhook-version"] = "V3",
   }
   local max_delay = tonumber(args[2]) or 0
   if max_delay > 0 then
      math.randomseed(tid + 1)
      delay = function()
         return math.random(0, max_delay)
      end
   end
end

function request()
   local line = pool:read("*l")
   if line == nil then
      if exhausted == 0 then
         exhausted = 1
         wrk.thread:stop()
      end
      -- Never a signed delivery again: an unsigned request the harness never counts (the
      -- run is failed as exhausted).
      return wrk.format("GET", "/pool-exhausted", {}, nil)
   end
   local id, event_id, signature = line:match("^(%S+) (%S+) (%S+)$")
   used = used + 1
   headers["webhook-id"] = id
   headers["webhook-signature"] = signature
   return wrk.format("POST", nil, headers, prefix .. event_id .. suffix)
end

function done(summary, latency, requests)
   local used_total, exhausted_threads = 0, 0
   for _, thread in ipairs(threads) do
      used_total = used_total + (thread:get("used") or 0)
      exhausted_threads = exhausted_threads + (thread:get("exhausted") or 0)
   end
   local e = summary.errors
   local int = math.floor
   io.write(string.format(
      "WRK_RESULT requests=%d duration_us=%d connect=%d read=%d write=%d status=%d timeout=%d"
         .. " p50_us=%d p99_us=%d p999_us=%d max_us=%d pool_used=%d exhausted_threads=%d\n",
      int(summary.requests), int(summary.duration), int(e.connect), int(e.read),
      int(e.write), int(e.status), int(e.timeout), int(latency:percentile(50)),
      int(latency:percentile(99)), int(latency:percentile(99.9)), int(latency.max),
      used_total, exhausted_threads))
end
