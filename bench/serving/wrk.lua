-- wrk script used by bench/serving/bench.py.
--
-- BENCH_PATH    the request path, e.g. /v2/models/rf/infer
-- BENCH_BODIES  a file with one JSON request body per line; requests go
--               round-robin over them (each connection's requests come from
--               one shared counter, so consecutive requests carry different rows)
--
-- Every request is rendered once, in init(); request() only picks the next one,
-- so the script costs wrk nearly nothing per request.
--
-- done() prints one line "BENCHJSON {...}" that the driver parses.

local reqs = {}
local counter = 0

function init(args)
   local path = os.getenv("BENCH_PATH") or "/"
   local file = os.getenv("BENCH_BODIES")
   local headers = { ["Content-Type"] = "application/json" }
   if file then
      local f = assert(io.open(file, "r"))
      for line in f:lines() do
         if #line > 0 then
            reqs[#reqs + 1] = wrk.format("POST", path, headers, line)
         end
      end
      f:close()
   end
   if #reqs == 0 then
      reqs[1] = wrk.format("GET", path)
   end
end

function request()
   counter = counter + 1
   return reqs[(counter % #reqs) + 1]
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
