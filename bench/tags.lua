-- wrk: each request a different tag t<first>…, threads interleaved so no tag repeats
-- (cold run) or cycling over <span> tags (memory run). Set FIRST and SPAN in the environment.
-- With DIGESTS ("i digest" lines from seed.py) it asks the registry itself what a cold lookup
-- asks of it instead: the new tag's manifest, then that image's config blob (two requests per
-- image, so pairs/s = requests/s / 2).
local first = tonumber(os.getenv("FIRST") or "0")
local span = tonumber(os.getenv("SPAN") or "1000000000")
local digests_file = os.getenv("DIGESTS")
local threads = 0
function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end
function init()
  n = 0
  if digests_file then
    digests = {}
    for line in io.lines(digests_file) do
      local i, d = line:match("^(%d+) (%S+)$")
      if i then digests[tonumber(i)] = d end
    end
  end
end
function request()
  if not digests_file then
    local i = first + ((n * 2 + id) % span)  -- two wrk threads
    n = n + 1
    return wrk.format("GET", "/local/bench/app/t" .. i .. "/history?level=0")
  end
  local i = first + ((math.floor(n / 2) * 2 + id) % span)
  n = n + 1
  if n % 2 == 1 then
    return wrk.format("GET", "/v2/bench/app/manifests/t" .. i, {
      Accept = "application/vnd.docker.distribution.manifest.v2+json" })
  end
  return wrk.format("GET", "/v2/bench/app/blobs/" .. digests[i])
end
