-- GET the URL's path. With a file argument (one access token a line), each request carries the
-- next token in turn as "Authorization: Bearer <token>", so every seeded user is read in rotation.
--   wrk -s get.lua http://127.0.0.1:PORT/users/user -- tokens.txt
local common = dofile("common.lua")
local tokens, path, static, i = nil, nil, nil, 0

function init(args)
  path = wrk.path
  static = wrk.format("GET", path)
  if args[1] and #args[1] > 0 then tokens = common.lines(args[1]) end
end

function request()
  if tokens == nil then return static end
  i = i % #tokens + 1
  return wrk.format("GET", path, { ["Authorization"] = "Bearer " .. tokens[i] })
end
