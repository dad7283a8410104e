-- wrk script for bench/soak.sh: the soak's mix of chat completions, as SDK clients send
-- them. 30% ask for a streamed answer, 70% for a whole one; each carries one of 100,000
-- users in `x-user-id`, so the gateway's sticky split spreads them over both arms.
--
--   BENCH_KEY=...   sent as `Authorization: Bearer ...` (a gateway key)

local key = os.getenv("BENCH_KEY")
local whole = '{"model":"gpt-4.1","messages":[{"role":"user","content":"Say hello."}],"max_tokens":16}'
local streamed = '{"model":"gpt-4.1","messages":[{"role":"user","content":"Say hello."}],"max_tokens":16,"stream":true}'

function init(args)
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
end

function request()
  local headers = {
    ["Content-Type"] = "application/json",
    ["x-user-id"] = "user-" .. math.random(1, 100000),
  }
  if key and key ~= "" then
    headers["Authorization"] = "Bearer " .. key
  end
  local body = whole
  if math.random() < 0.3 then
    body = streamed
  end
  return wrk.format("POST", nil, headers, body)
end
