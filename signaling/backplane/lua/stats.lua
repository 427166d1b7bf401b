-- stats: ARGV prefix, role, ... Counts, and the nodes whose heartbeat key is alive.
return run(function()
  local roles = {}
  for i = 2, #ARGV do
    roles[#roles + 1] = ARGV[i]
    roles[#roles + 1] = redis.call('SCARD', k('role', ARGV[i]))
  end
  local queued = {}
  for _, queue in ipairs(redis.call('SMEMBERS', k('queues'))) do
    local waiting = redis.call('ZCARD', k('queue', queue))
    if waiting > 0 then
      queued[#queued + 1] = queue
      queued[#queued + 1] = waiting
    end
  end
  local nodes = {}
  for _, node in ipairs(redis.call('SMEMBERS', k('nodes'))) do
    if redis.call('EXISTS', k('node', node)) == 1 then
      nodes[#nodes + 1] = node
    end
  end
  return {'ok', roles, redis.call('ZCARD', k('parked')), queued, redis.call('SCARD', k('calls')), nodes}
end)
