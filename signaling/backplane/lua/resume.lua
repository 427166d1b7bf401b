-- resume: ARGV prefix, resume hash, node, new resume hash.
-- The takeover: the session moves to `node` with a new single-use token, parked or not.
return run(function()
  local resume_key = k('resume', ARGV[2])
  local sid = redis.call('GET', resume_key)
  if not sid then
    return {'none'}
  end
  local rec = session(sid)
  if rec == nil or rec.resume_hash ~= ARGV[2] then
    redis.call('DEL', resume_key)
    return {'none'}
  end
  local node = ARGV[3]
  local was_parked = '0'
  if rec.parked_until then
    was_parked = '1'
  end
  local session_key = k('session', sid)
  redis.call('HSET', session_key, 'node', node, 'resume_hash', ARGV[4])
  redis.call('HDEL', session_key, 'parked_until')
  redis.call('ZREM', k('parked'), sid)
  redis.call('DEL', resume_key)
  redis.call('SET', k('resume', ARGV[4]), sid)
  redis.call('SREM', k('node-sessions', rec.node), sid)
  redis.call('SADD', k('node-sessions', node), sid)
  redis.call('SADD', k('nodes'), node)
  local linked = with_links(sid)
  return {'ok', rec.node, was_parked, linked[1], linked[2], linked[3]}
end)
