-- wrk script used by bench/tracking/bench.py.
--
-- BENCH_MODE=health      GET the URL given to wrk (used for the client ceiling).
-- BENCH_MODE=log-metric  POST /api/2.0/mlflow/runs/log-metric, one metric point
--                        per request, round-robin over the runs in BENCH_RUN_IDS
--                        (comma separated). Every request carries a distinct
--                        step, so no two requests log the same point.
--
-- done() prints one line "BENCHJSON {...}" that the driver parses.

local mode = os.getenv("BENCH_MODE") or "health"
local threads = {}

function setup(thread)
   thread:set("tid", #threads)
   table.insert(threads, thread)
end

local ids = {}
local counter = 0
local base_ts = 0
local nthreads = 1
local body_fmt = '{"run_id":"%s","key":"%s","value":%.6f,"timestamp":%d,"step":%d}'

function init(args)
   nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
   base_ts = tonumber(os.getenv("BENCH_TS") or "1700000000000")
   for id in string.gmatch(os.getenv("BENCH_RUN_IDS") or "", "[^,]+") do
      ids[#ids + 1] = id
   end
   math.randomseed(1234 + (tid or 0))
   if mode == "log-metric" then
      wrk.method = "POST"
      wrk.path = "/api/2.0/mlflow/runs/log-metric"
      wrk.headers["Content-Type"] = "application/json"
   end
end

function request()
   if mode ~= "log-metric" then
      return wrk.format()
   end
   counter = counter + 1
   local run = ids[(counter % #ids) + 1]
   local step = counter * nthreads + (tid or 0)
   local body = string.format(body_fmt, run, "w3", math.random(), base_ts + step, step)
   return wrk.format(nil, nil, nil, body)
end

function done(summary, latency, requests)
   local e = summary.errors
   io.write(string.format(
      'BENCHJSON {"requests":%d,"duration_us":%d,"bytes":%d,' ..
      '"err_connect":%d,"err_read":%d,"err_write":%d,"err_status":%d,"err_timeout":%d,' ..
      '"lat_min_us":%d,"lat_mean_us":%.1f,"lat_max_us":%d,' ..
      '"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d}\n',
      summary.requests, summary.duration, summary.bytes,
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.min, latency.mean, latency.max,
      latency:percentile(50), latency:percentile(90),
      latency:percentile(99), latency:percentile(99.9)))
end
