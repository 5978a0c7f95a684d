-- POST /auth/login as each seeded user in turn (a file of emails, one a line; one password for all).
--   wrk -s login.lua http://127.0.0.1:PORT/auth/login -- emails.txt PASSWORD
local common = dofile("common.lua")
local emails, password, i = nil, nil, 0
local headers = { ["Content-Type"] = "application/json" }

function init(args)
  emails = common.lines(args[1])
  password = args[2]
end

function request()
  i = i % #emails + 1
  local body = string.format('{"email": "%s", "password": "%s"}', emails[i], password)
  return wrk.format("POST", wrk.path, headers, body)
end
