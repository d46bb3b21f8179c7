-- wrk script: POST /v1/batch with 100 Segment track/identify events per request, every
-- messageId unique, about 1 in 10 events from a returning person so the processor merges.
-- The write keys come from the environment (BENCH_WRITE_KEY, comma-separated for several
-- workspaces: the requests take them in turn).
local counter = 0
local threads = 0
-- Each thread gets its own tag (set from the main state), so messageIds never collide.
function setup(thread)
  threads = threads + 1
  thread:set("thread_tag", string.format("%d-%d", os.time(), threads))
end
local keys = {}
for key in string.gmatch(os.getenv("BENCH_WRITE_KEY"), "[^,]+") do keys[#keys + 1] = key end
local requests = 0

local function b64(data)
  local chars = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
  return ((data:gsub('.', function(x)
    local r, b = '', x:byte()
    for i = 8, 1, -1 do r = r .. (b % 2 ^ i - b % 2 ^ (i - 1) > 0 and '1' or '0') end
    return r
  end) .. '0000'):gsub('%d%d?%d?%d?%d?%d?', function(x)
    if #x < 6 then return '' end
    local c = 0
    for i = 1, 6 do c = c + (x:sub(i, i) == '1' and 2 ^ (6 - i) or 0) end
    return chars:sub(c + 1, c + 1)
  end) .. ({ '', '==', '=' })[#data % 3 + 1])
end

-- BENCH_DELAY_MS paces each connection (a steady load rather than as fast as possible).
local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "0")
function delay()
  return pause
end

wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local authorizations = {}
for i, key in ipairs(keys) do authorizations[i] = "Basic " .. b64(key .. ":") end

request = function()
  local items = {}
  for i = 1, 100 do
    counter = counter + 1
    local person = counter % 10 == 0 and tostring(counter % 5000) or (thread_tag .. "-" .. counter)
    if i % 10 == 1 then
      items[i] = string.format(
        '{"type":"identify","messageId":"%s-%d","anonymousId":"anon-%s","userId":"user-%s",' ..
        '"traits":{"email":"p%s@bench.test","plan":"pro"},"timestamp":"2026-11-23T10:00:00Z"}',
        thread_tag, counter, person, person, person)
    else
      items[i] = string.format(
        '{"type":"track","event":"Product Viewed","messageId":"%s-%d","anonymousId":"anon-%s",' ..
        '"properties":{"sku":"SKU-%d","price":19.99},"context":{"ip":"198.51.100.%d",' ..
        '"userAgent":"Mozilla/5.0"},"timestamp":"2026-11-23T10:00:00Z"}',
        thread_tag, counter, person, counter % 1000, counter % 250)
    end
  end
  requests = requests + 1
  local headers = { ["Authorization"] = authorizations[requests % #authorizations + 1] }
  return wrk.format(nil, nil, headers, '{"batch":[' .. table.concat(items, ",") .. '],"sentAt":"2026-11-23T10:00:00Z"}')
end
