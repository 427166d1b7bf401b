-- Helpers shared by every transition script of signaling.backplane.redis.
--
-- The Python side prepends this file to each script, so every script sees these locals.
-- Calling convention:
--   ARGV[1]  the key prefix (e.g. "sig:"); the keys are drawn in redis.py's docstring
--   reply    {'ok', ...} | {'none'} | {'err', code, detail}
-- Floats travel as strings both ways: a Lua number in a reply is truncated to an integer,
-- and cjson would print only 14 significant digits. Refusals are raised with refuse()
-- BEFORE the first write of a script, so a refused transition changes nothing.

local P = ARGV[1]

local function k(kind, id)
  if id == nil then
    return P .. kind
  end
  return P .. kind .. ':' .. id
end

local function as_map(flat)
  local map = {}
  for i = 1, #flat, 2 do
    map[flat[i]] = flat[i + 1]
  end
  return map
end

local function refuse(code, detail)
  error({refusal = code, detail = detail or ''})
end

-- Runs a script body, turning refuse() into an {'err', ...} reply; other errors propagate.
local function run(body)
  local ok, result = pcall(body)
  if ok then
    return result
  end
  if type(result) == 'table' and result.refusal ~= nil then
    return {'err', result.refusal, result.detail}
  end
  error(result, 0)
end

local function contains(list, value)
  for _, item in ipairs(list) do
    if item == value then
      return true
    end
  end
  return false
end

local function hgetall(key)
  return redis.call('HGETALL', key)
end

-- The session's fields as a map and as the flat HGETALL list, or nil.
local function session(sid)
  local flat = hgetall(k('session', sid))
  if #flat == 0 then
    return nil, flat
  end
  return as_map(flat), flat
end

-- HubState._live: the session must exist and, when given, have this role.
local function live(sid, role)
  local rec, flat = session(sid)
  if rec == nil then
    refuse('not-authenticated', 'the session has ended')
  end
  if role ~= nil and rec.role ~= role then
    refuse('forbidden', 'only a ' .. role .. ' may do that')
  end
  return rec, flat
end

-- The session with the call and the ticket it names: {session, call, ticket} (flat lists).
local function with_links(sid)
  local rec, flat = session(sid)
  local call, ticket = {}, {}
  if rec.call then
    call = hgetall(k('call', rec.call))
  end
  if rec.ticket then
    ticket = hgetall(k('ticket', rec.ticket))
  end
  return {flat, call, ticket}
end

local function remove_ticket(id, queue)
  redis.call('DEL', k('ticket', id))
  redis.call('ZREM', k('notify'), id)
  local queue_key = k('queue', queue)
  redis.call('ZREM', queue_key, id)
  if redis.call('ZCARD', queue_key) == 0 then
    redis.call('SREM', k('queues'), queue)
  end
end

-- Removes a ticket from everywhere; its flat fields, or {} when there was none.
local function pop_ticket(id)
  local flat = hgetall(k('ticket', id))
  if #flat > 0 then
    remove_ticket(id, as_map(flat).queue)
  end
  return flat
end

-- HubState._end_call: forget the call, free both parties, give the doctor back the presence
-- they had before it. The call's flat fields, or {} when there was none.
local function end_call(call_id)
  local flat = hgetall(k('call', call_id))
  if #flat == 0 then
    return flat
  end
  local call = as_map(flat)
  redis.call('DEL', k('call', call_id), k('taken', call.ticket))
  redis.call('SREM', k('calls'), call_id)
  local cabin_key = k('session', call.cabin_session)
  if redis.call('EXISTS', cabin_key) == 1 then
    redis.call('HDEL', cabin_key, 'call')
  end
  local doctor_key = k('session', call.doctor_session)
  if redis.call('EXISTS', doctor_key) == 1 then
    local before = redis.call('HGET', doctor_key, 'before')
    if not before then
      before = 'available'
    end
    redis.call('HSET', doctor_key, 'presence', before)
    redis.call('HDEL', doctor_key, 'call', 'before')
  end
  return flat
end

-- HubState.close: forget the session first, then cancel its ticket and end its call.
-- {session, ended call, cancelled ticket} (flat lists), or nil when there is no session.
local function close(sid)
  local rec, flat = session(sid)
  if rec == nil then
    return nil
  end
  redis.call('DEL', k('session', sid))
  redis.call('SREM', k('identity', rec.identity), sid)
  redis.call('SREM', k('role', rec.role), sid)
  redis.call('SREM', k('node-sessions', rec.node), sid)
  redis.call('ZREM', k('parked'), sid)
  local resume_key = k('resume', rec.resume_hash)
  if redis.call('GET', resume_key) == sid then
    redis.call('DEL', resume_key)
  end
  if rec.role == 'doctor' then
    for _, hospital in ipairs(cjson.decode(rec.hospitals)) do
      redis.call('SREM', k('doctors', hospital), sid)
    end
  end
  local ticket, call = {}, {}
  if rec.ticket then
    ticket = pop_ticket(rec.ticket)
  end
  if rec.call then
    call = end_call(rec.call)
  end
  return {flat, call, ticket}
end

-- HubState.park: {session, call, ticket} (flat lists); the session must exist.
local function park(sid, deadline)
  redis.call('HSET', k('session', sid), 'parked_until', deadline)
  redis.call('ZADD', k('parked'), deadline, sid)
  return with_links(sid)
end
