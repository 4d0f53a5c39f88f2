-- wrk: each request a different tag t<first>…, threads interleaved so no tag repeats
-- (cold run) or cycling over <span> tags (memory run). Set FIRST and SPAN in the environment.
local first = tonumber(os.getenv("FIRST") or "0")
local span = tonumber(os.getenv("SPAN") or "1000000000")
local threads = 0
function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end
function init()
  n = 0
end
function request()
  local i = first + ((n * 2 + id) % span)  -- two wrk threads
  n = n + 1
  return wrk.format("GET", "/local/bench/app/t" .. i .. "/history?level=0")
end
