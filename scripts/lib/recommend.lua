-- wrk script for scripts/bench-http.sh: GET /v1/recommend for a random one of the load
-- generator's 500 users, then one summary line with errors and latency percentiles (ms).
math.randomseed(7)
request = function()
  return wrk.format("GET", "/v1/recommend?user_id=u" .. math.random(0, 499) .. "&k=10")
end
done = function(summary, latency, requests)
  local e = summary.errors
  local errors = e.connect + e.read + e.write + e.status + e.timeout
  io.write(string.format(
    "wrk|%d|%.0f|%d|%.1f|%.1f|%.1f|%.1f|%.1f\n",
    summary.requests, summary.requests / (summary.duration / 1e6), errors,
    latency:percentile(50) / 1000, latency:percentile(90) / 1000, latency:percentile(99) / 1000,
    latency:percentile(99.9) / 1000, latency.max / 1000))
end
