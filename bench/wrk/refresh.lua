-- POST /auth/refresh-tokens with single-use refresh tokens, each used exactly once.
--
-- The file holds one live refresh token per connection (from the seeding registrations). Every
-- request takes a token from the pool; every 200 answer carries the next refresh token of that
-- session, which goes back into the pool. wrk generates a connection's next request only after
-- its previous response was handled, so with at least as many tokens as connections the pool is
-- never empty: each connection in effect follows its own rotation chain, and no token is ever
-- presented twice (which would end the session: theft detection).
--   wrk -t1 -c32 -s refresh.lua http://127.0.0.1:PORT/auth/refresh-tokens -- refresh_tokens.txt
local common = dofile("common.lua")
local pool = {}
local headers = { ["Content-Type"] = "application/json" }
local empty = 0

function init(args)
  pool = common.lines(args[1])
end

function request()
  local token = table.remove(pool)
  if token == nil then
    empty = empty + 1
    token = "pool-empty"  -- answered 401, and counted by wrk as a status error
  end
  return wrk.format("POST", wrk.path, headers, '{"refreshToken": "' .. token .. '"}')
end

function response(status, headers, body)
  if status == 200 then
    local token = body:match('"refresh":%s*{%s*"token":%s*"([^"]+)"')
    if token then pool[#pool + 1] = token end
  end
end
