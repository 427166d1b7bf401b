-- open_session: ARGV prefix, max per identity, then the session's hash as field, value, ...
return run(function()
  local fields = {}
  for i = 3, #ARGV do
    fields[#fields + 1] = ARGV[i]
  end
  local rec = as_map(fields)
  local session_key = k('session', rec.id)
  if redis.call('EXISTS', session_key) == 1 then
    refuse('internal', 'session id reused')
  end
  if redis.call('SCARD', k('identity', rec.identity)) >= tonumber(ARGV[2]) then
    refuse('too-many-connections')
  end
  redis.call('HSET', session_key, unpack(fields))
  redis.call('SET', k('resume', rec.resume_hash), rec.id)
  redis.call('SADD', k('identity', rec.identity), rec.id)
  redis.call('SADD', k('role', rec.role), rec.id)
  redis.call('SADD', k('node-sessions', rec.node), rec.id)
  redis.call('SADD', k('nodes'), rec.node)
  if rec.role == 'doctor' then
    for _, hospital in ipairs(cjson.decode(rec.hospitals)) do
      redis.call('SADD', k('doctors', hospital), rec.id)
    end
  end
  return {'ok'}
end)
