-- SPDX-License-Identifier: Apache-2.0
-- bench/serve-token.lua: a wrk script for token issuance, for bench/serve.py.
-- POST /oauth/token, grant_type=client_credentials, client_secret_basic:
--
--   wrk -t2 -c64 -d10s --latency -s bench/serve-token.lua \
--       http://127.0.0.1:PORT/oauth/token -- CLIENT_ID CLIENT_SECRET [SCOPE]
--
-- The request is set up in init() and is the same every time, so wrk sends
-- it without calling Lua per request. The client id and secret go into the
-- Basic credentials as they are: RFC 6749 §2.3.1 form-encodes them first,
-- which changes nothing for tokend's ids and secrets (A-Z a-z 0-9 . _ ~ -).

local b64chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function base64(s)
   local out = {}
   for k = 1, #s, 3 do
      local a, b, c = s:byte(k, k + 2)
      local v = a * 65536 + (b or 0) * 256 + (c or 0)
      local q = {}
      for j = 3, 0, -1 do
         local x = math.floor(v / 64 ^ j) % 64
         q[#q + 1] = b64chars:sub(x + 1, x + 1)
      end
      if not b then q[3] = "=" end
      if not c then q[4] = "=" end
      out[#out + 1] = table.concat(q)
   end
   return table.concat(out)
end

function init(args)
   local id, secret, scope = args[1], args[2], args[3]
   if not id or not secret then
      error("serve-token.lua: give CLIENT_ID CLIENT_SECRET [SCOPE] after --")
   end
   wrk.method = "POST"
   wrk.body = "grant_type=client_credentials"
   if scope then
      wrk.body = wrk.body .. "&scope=" .. scope:gsub(" ", "+"):gsub(":", "%%3A")
   end
   wrk.headers["Content-Type"] = "application/x-www-form-urlencoded"
   wrk.headers["Authorization"] = "Basic " .. base64(id .. ":" .. secret)
end
