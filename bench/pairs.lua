-- wrk against the registry itself: what a cold lookup makes it do, GET manifest of a new tag t<i>
-- and GET of that image's config blob, over distinct images as the cold run meets them. Two
-- requests per image, so pairs/s = requests/s / 2. Set FIRST, SPAN and DIGESTS ("i digest" lines
-- from seed.py) in the environment.
local first = tonumber(os.getenv("FIRST") or "0")
local span = tonumber(os.getenv("SPAN") or "1000")
local threads = 0
function setup(thread)
  thread:set("id", threads)
  threads = threads + 1
end
function init()
  digests = {}
  for line in io.lines(os.getenv("DIGESTS")) do
    local i, d = line:match("^(%d+) (%S+)$")
    if i then digests[tonumber(i)] = d end
  end
  n = 0
end
function request()
  local i = first + ((math.floor(n / 2) * 2 + id) % span)  -- two wrk threads, disjoint images
  n = n + 1
  if n % 2 == 1 then
    return wrk.format("GET", "/v2/bench/app/manifests/t" .. i, {
      Accept = "application/vnd.docker.distribution.manifest.v2+json" })
  end
  return wrk.format("GET", "/v2/bench/app/blobs/" .. digests[i])
end
