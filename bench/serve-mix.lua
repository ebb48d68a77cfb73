-- SPDX-License-Identifier: Apache-2.0
-- bench/serve-mix.lua: a wrk script that rotates requests over several
-- (path, Authorization) pairs, for the "mix of invalid tokens" run of
-- bench/serve.py. The pairs come as script arguments after "--":
--
--   wrk -t2 -c64 -d10s --latency -s bench/serve-mix.lua http://127.0.0.1:PORT/ -- \
--       '/auth?aud=orders-api&scope=orders:read' 'Bearer <expired token>' \
--       '/auth?aud=orders-api&scope=orders:read' 'Bearer <token, signature altered>' \
--       '/auth?aud=billing-api&scope=orders:read' 'Bearer <valid token, other audience>' \
--       '/auth?aud=orders-api&scope=orders:read' 'Bearer garbage'
--
-- Every request is formatted once, in init(); request() only hands out the
-- next one, so wrk spends as little as possible per request in Lua.

local reqs = {}
local n = 0
local i = 0

function init(args)
   for k = 1, #args - 1, 2 do
      n = n + 1
      reqs[n] = wrk.format("GET", args[k], { ["Authorization"] = args[k + 1] })
   end
   if n == 0 then
      error("serve-mix.lua: give PATH AUTHORIZATION pairs after --")
   end
end

function request()
   i = i % n + 1
   return reqs[i]
end
