-- SPDX-License-Identifier: Apache-2.0
-- bench/issuers-rotate.lua: a wrk script for GET /auth across a key
-- rotation at a trusted issuer, for bench/issuers.py:
--
--   wrk -t2 -c16 -d20s --latency -s bench/issuers-rotate.lua \
--       http://127.0.0.1:PORT -- '/auth?aud=orders-api&scope=orders:read' OLD_TOKEN AT NEW_TOKEN
--
-- Until the Unix time AT (seconds) every request carries OLD_TOKEN (signed
-- with the issuer's current key). From AT on, requests alternate between
-- OLD_TOKEN and NEW_TOKEN (signed with the key the issuer has published
-- meanwhile): the issuer has rotated, new tokens carry the new kid, tokens
-- issued before are still in use until they expire.
--
-- Both requests are formatted once, in init(); request() only picks one.
-- The clock is read every 64 requests (per thread), so the switch happens
-- within a fraction of a millisecond of AT at these rates. At the end, done()
-- prints one line "rotate: sent_new N" (requests that carried NEW_TOKEN).

local threads = {}
local req_old, req_new
local at = 0
local n = 0
local switched = false
sent_new = 0

function setup(thread)
   table.insert(threads, thread)
end

function init(args)
   local path, old, t, new = args[1], args[2], tonumber(args[3]), args[4]
   if not path or not old or not t or not new then
      error("issuers-rotate.lua: give PATH OLD_TOKEN AT NEW_TOKEN after --")
   end
   req_old = wrk.format("GET", path, { ["Authorization"] = "Bearer " .. old })
   req_new = wrk.format("GET", path, { ["Authorization"] = "Bearer " .. new })
   at = t
end

function request()
   n = n + 1
   if not switched and n % 64 == 1 and os.time() >= at then
      switched = true
   end
   if switched and n % 2 == 0 then
      sent_new = sent_new + 1
      return req_new
   end
   return req_old
end

function done(summary, latency, requests)
   local total = 0
   for _, t in ipairs(threads) do
      total = total + t:get("sent_new")
   end
   io.write(string.format("rotate: sent_new %d\n", total))
end
