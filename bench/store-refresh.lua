-- SPDX-License-Identifier: Apache-2.0
-- bench/store-refresh.lua: a wrk script for refresh grants, for bench/store.py.
-- POST /oauth/token, grant_type=refresh_token, public client (client_id in
-- the body), each request presenting a refresh token that was never
-- presented before:
--
--   wrk -t2 -c64 -d10s --latency -s bench/store-refresh.lua \
--       http://127.0.0.1:PORT/oauth/token -- CLIENT_ID TOKENS_FILE OUT_FILE
--
-- TOKENS_FILE holds one refresh token per line, each the current token of
-- its own family (one sign-in each). They are dealt out to wrk's threads in
-- turn. Each thread keeps a queue of unused tokens: request() takes the
-- first one out of the queue, response() puts the refresh_token of a 200
-- answer (the family's successor) at the end. A family therefore has at
-- most one request in flight and rotates strictly in sequence, and no token
-- is ever sent twice. wrk has no per-connection state in Lua, hence the
-- per-thread queue: a successor may go out on another connection of the
-- same thread, which the server cannot tell from a client reconnecting.
--
-- A family whose answer is not a 200 with a refresh_token is dropped (its
-- token is never sent again). The tokens of the requests still in flight
-- when wrk stops are lost with their answers. When a thread's queue is empty
-- it sends GET /healthz instead and counts it as "starved": give at least
-- as many tokens as connections (bench/store.py gives 1.5x).
--
-- done() writes to OUT_FILE one line "ok OK BAD STARVED OTHER" then the tokens
-- left in every queue (unused, the current token of their family), which
-- bench/store.py uses in the next round. BAD counts non-200 answers and 200
-- answers without a refresh_token; the first such answer's status and body
-- follow on a line "first_bad STATUS BODY" (the body's first 300 bytes).

local threads = {}
local nthreads = 0

function setup(thread)
   nthreads = nthreads + 1
   thread:set("id", nthreads)
   table.insert(threads, thread)
end

function init(args)
   client_id, tokens_file, out_file = args[1], args[2], args[3]
   if not client_id or not tokens_file or not out_file then
      error("store-refresh.lua: give CLIENT_ID TOKENS_FILE OUT_FILE after --")
   end
   queue, head, tail = {}, 1, 0
   ok, bad, starved, other = 0, 0, 0, 0
   first_bad = ""
   -- every thread reads the file; its first line is "threads N" (wrk -t),
   -- and thread k (1-based, numbered by setup()) takes tokens k, k+N, ...
   local lines = {}
   for line in io.lines(tokens_file) do
      if line ~= "" then
         lines[#lines + 1] = line
      end
   end
   local stride = tonumber((lines[1] or ""):match("^threads (%d+)$"))
   if not stride then
      error("store-refresh.lua: the first line of TOKENS_FILE must be 'threads N'")
   end
   for k = 2, #lines do
      if (k - 2) % stride == id - 1 then
         tail = tail + 1
         queue[tail] = lines[k]
      end
   end
   prefix = "grant_type=refresh_token&client_id=" .. client_id .. "&refresh_token="
   post_headers = { ["Content-Type"] = "application/x-www-form-urlencoded" }
   healthz_headers = {}
end

function request()
   if head > tail then
      starved = starved + 1
      return wrk.format("GET", "/healthz", healthz_headers, nil)
   end
   local t = queue[head]
   queue[head] = nil
   head = head + 1
   return wrk.format("POST", nil, post_headers, prefix .. t)
end

function response(status, headers, body)
   if status == 200 then
      local t = body:match('"refresh_token"%s*:%s*"([^"]+)"')
      if t then
         tail = tail + 1
         queue[tail] = t
         ok = ok + 1
         return
      end
      if not body:find('"access_token"', 1, true) then
         other = other + 1 -- a /healthz answer
         return
      end
   end
   bad = bad + 1
   if first_bad == "" then
      first_bad = tostring(status) .. " " .. (body:sub(1, 300):gsub("[\r\n]", " "))
   end
end

function done(summary, latency, requests)
   local out_path = threads[1]:get("out_file")
   local f = assert(io.open(out_path, "w"))
   local tok, nbad, nstarved, nother = 0, 0, 0, 0
   local first = ""
   for _, t in ipairs(threads) do
      tok = tok + t:get("ok")
      nbad = nbad + t:get("bad")
      nstarved = nstarved + t:get("starved")
      nother = nother + t:get("other")
      if first == "" then
         first = t:get("first_bad")
      end
   end
   f:write(string.format("ok %d %d %d %d\n", tok, nbad, nstarved, nother))
   f:write("first_bad " .. first .. "\n")
   for _, t in ipairs(threads) do
      local q, h, tl = t:get("queue"), t:get("head"), t:get("tail")
      for k = h, tl do
         if q[k] then
            f:write(q[k], "\n")
         end
      end
   end
   f:close()
end
