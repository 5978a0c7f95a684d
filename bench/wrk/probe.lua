-- A paced GET probe: each connection waits args[1] ms (default 10) between requests, so the probe
-- measures latency without itself loading the server. Used for /health while logins run.
--   wrk -c2 -s probe.lua http://127.0.0.1:PORT/health -- 10
dofile("common.lua")
local pause = 10

function init(args)
  if args[1] then pause = tonumber(args[1]) end
end

function delay()
  return pause
end

function request()
  return wrk.format("GET", wrk.path)
end
