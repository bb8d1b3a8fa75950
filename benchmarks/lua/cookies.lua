-- GET / sending back the signed cookie the server set last (the first
-- request has none); benchmarks/apps/cookies_app.py checks and renews it.
local cookie = nil

request = function()
  if cookie then
    return wrk.format(nil, nil, {["Cookie"] = cookie})
  end
  return wrk.format()
end

response = function(status, headers, body)
  local c = headers["Set-Cookie"]
  if c then
    cookie = c:match("^([^;]+)")
  end
end
