-- wrk script of the ingest benchmark: each thread POSTs WRK_QUOTA hello events with ids unique to the
-- batch (WRK_PREFIX), says DONE and stops; done() prints one RESULT line of JSON for bench/wrk.py.
-- WRK_DELAY_MS paces each connection: between an answer and its next request it waits a random time,
-- exponential with that mean, so connections do not fire together (a fixed delay keeps the first
-- request's burst in step forever). The offered load is about connections / (latency + delay): close to
-- an open loop's while the latency stays well under the delay.
local quota = tonumber(os.getenv("WRK_QUOTA"))
local pause = tonumber(os.getenv("WRK_DELAY_MS") or "0")
if pause > 0 then
  function delay()
    return math.floor(-math.log(1 - math.random()) * pause)
  end
end
local prefix = os.getenv("WRK_PREFIX")
local headers = {
  ["Content-Type"] = "application/json",
  ["Authorization"] = "Bearer " .. os.getenv("WRK_KEY"),
}
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  sent, answered, statuses = 0, 0, {}
  math.randomseed(os.time() * 100 + tid)
end

function request()
  sent = sent + 1
  local id = prefix .. "-" .. tid .. "-" .. sent
  local body = '{"id":"' .. id .. '","payload":{"name":"' .. id .. '"}}'
  return wrk.format("POST", os.getenv("WRK_PATH"), headers, body)
end

function response(status, headers, body)
  answered = answered + 1
  statuses[status] = (statuses[status] or 0) + 1
  if answered == quota then
    io.write("DONE\n")  -- bench/wrk.py interrupts wrk once every thread said so
    io.flush()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local counts = {}
  for _, thread in ipairs(threads) do
    for status, n in pairs(thread:get("statuses")) do
      counts[status] = (counts[status] or 0) + n
    end
  end
  local parts = {}
  for status, n in pairs(counts) do
    table.insert(parts, string.format('"%d": %d', status, n))
  end
  io.write(string.format(
    'RESULT {"requests": %d, "p50_ms": %.2f, "p99_ms": %.2f, "statuses": {%s}}\n',
    summary.requests, latency:percentile(50) / 1000, latency:percentile(99) / 1000, table.concat(parts, ", ")
  ))
end
