-- SPDX-License-Identifier: Apache-2.0
-- bench/issuers-auth.lua: a wrk script for GET /auth with one bearer token,
-- for bench/issuers.py:
--
--   wrk -t2 -c16 -d5s --latency -s bench/issuers-auth.lua \
--       http://127.0.0.1:PORT -- '/auth?aud=orders-api&scope=orders:read' TOKEN
--
-- The request is set up in init() and is the same every time: the script
-- defines no request(), so wrk formats it once per thread and sends it
-- without calling Lua per request (as with -H 'Authorization: Bearer ...',
-- but without the token on wrk's command line).

function init(args)
   local path, token = args[1], args[2]
   if not path or not token then
      error("issuers-auth.lua: give PATH TOKEN after --")
   end
   wrk.method = "GET"
   wrk.path = path
   wrk.headers["Authorization"] = "Bearer " .. token
end
