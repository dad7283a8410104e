-- wrk script: POST a small chat completion, as an OpenAI SDK would.
--
--   BENCH_STREAM=1   ask for a streamed answer ("stream": true)
--   BENCH_KEY=...    send `Authorization: Bearer ...` (a gateway key)
--   BENCH_BODY_FILE=PATH  send that file's bytes as the body instead, as bench/rounds.sh
--                    does with its cases' bodies (bench/cases.sh); BENCH_STREAM is then
--                    moot: the body says whether it asks for a stream
--
-- Each request carries a random `x-user-id`, so that a gateway splitting on it spreads
-- users over both arms; servers that do not split ignore the header.

local stream = os.getenv("BENCH_STREAM") == "1"

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local key = os.getenv("BENCH_KEY")
if key and key ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. key
end
wrk.body = '{"model":"gpt-4.1","messages":[{"role":"system","content":"You are terse."},'
  .. '{"role":"user","content":"Say hello in five words."}],"max_tokens":16'
  .. (stream and ',"stream":true' or '') .. '}'
local body_file = os.getenv("BENCH_BODY_FILE")
if body_file and body_file ~= "" then
  local file = assert(io.open(body_file, "rb"))
  wrk.body = file:read("*a")
  file:close()
end

function init(args)
  math.randomseed(os.time() + math.floor(os.clock() * 1000000))
end

function request()
  -- wrk.format replaces wrk.headers with the table it is given: copy them in.
  local headers = { ["x-user-id"] = "user-" .. math.random(1, 100000) }
  for name, value in pairs(wrk.headers) do
    headers[name] = value
  end
  return wrk.format(nil, nil, headers, nil)
end
