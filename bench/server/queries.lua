-- wrk script for bench/server/run_load.sh: text searches rotating over
-- phrases of models/shapes-clip's world, and a summary line to parse.
local colors = {"red", "green", "blue", "yellow", "purple", "orange", "white", "black"}
local shapes = {"circle", "square", "triangle", "star", "cross"}
local places = {"on the left", "on the right", "at the top", "at the bottom", "in the middle"}
local paths = {}

init = function(args)
  local n = 0
  for _, c in ipairs(colors) do
    for _, s in ipairs(shapes) do
      for _, p in ipairs(places) do
        n = n + 1
        paths[n] = "/api/search?k=20&q=" .. ("a " .. c .. " " .. s .. " " .. p):gsub(" ", "+")
      end
    end
  end
  -- Each wrk thread starts elsewhere in the list.
  counter = math.random(n)
end

request = function()
  counter = counter % #paths + 1
  return wrk.format("GET", paths[counter])
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d seconds=%.1f rps=%.0f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f max_ms=%.2f " ..
    "errors_connect=%d errors_read=%d errors_write=%d errors_status=%d errors_timeout=%d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, e.connect, e.read, e.write, e.status, e.timeout))
end
