-- set_presence: ARGV prefix, session, presence. In a call it is remembered for after.
return run(function()
  local rec = live(ARGV[2], 'doctor')
  local session_key = k('session', rec.id)
  if rec.call then
    redis.call('HSET', session_key, 'before', ARGV[3])
  else
    redis.call('HSET', session_key, 'presence', ARGV[3])
  end
  return {'ok', hgetall(session_key)}
end)
