-- wrk reporter: after the run, print one machine-readable line
--   WRK_JSON {...}
-- with the request count, the exact measured duration, errors and latency
-- percentiles (microseconds).  The harness appends this file to a scenario's
-- own wrk script (if it has one), so `done` here is the one that runs.

local function num(x)
  return string.format("%.3f", x)
end

done = function(summary, latency, requests)
  local e = summary.errors
  local pct = {}
  for _, p in ipairs({50, 75, 90, 99, 99.9}) do
    pct[#pct + 1] = string.format('"p%s":%s', tostring(p), num(latency:percentile(p)))
  end
  io.write("WRK_JSON {",
    '"requests":', string.format("%d", summary.requests), ",",
    '"duration_us":', string.format("%d", summary.duration), ",",
    '"bytes":', string.format("%d", summary.bytes), ",",
    '"errors":{',
      '"connect":', string.format("%d", e.connect), ",",
      '"read":', string.format("%d", e.read), ",",
      '"write":', string.format("%d", e.write), ",",
      '"status":', string.format("%d", e.status), ",",
      '"timeout":', string.format("%d", e.timeout), "},",
    '"latency_us":{',
      '"min":', num(latency.min), ",",
      '"max":', num(latency.max), ",",
      '"mean":', num(latency.mean), ",",
      '"stdev":', num(latency.stdev), ",",
      table.concat(pct, ","), "}",
    "}\n")
end
