-- adopt_orphans: ARGV prefix, this node, until.
-- Every session still live on a node whose heartbeat key has expired is parked until
-- `until`, once: a parked session is skipped. A dead node with no sessions left is forgotten.
return run(function()
  local out = {'ok'}
  for _, node in ipairs(redis.call('SMEMBERS', k('nodes'))) do
    if node ~= ARGV[2] and redis.call('EXISTS', k('node', node)) == 0 then
      local node_sessions = k('node-sessions', node)
      for _, sid in ipairs(redis.call('SMEMBERS', node_sessions)) do
        local rec = session(sid)
        if rec == nil then
          redis.call('SREM', node_sessions, sid)
        elseif not rec.parked_until then
          out[#out + 1] = park(sid, ARGV[3])
        end
      end
      if redis.call('SCARD', node_sessions) == 0 then
        redis.call('SREM', k('nodes'), node)
      end
    end
  end
  return out
end)
