-- expire: ARGV prefix, now. Closes every parked session whose grace window is over.
return run(function()
  local now = tonumber(ARGV[2])
  local out = {'ok'}
  for _, sid in ipairs(redis.call('ZRANGEBYSCORE', k('parked'), '-inf', ARGV[2])) do
    local rec = session(sid)
    if rec == nil or not rec.parked_until then
      redis.call('ZREM', k('parked'), sid)
    elseif tonumber(rec.parked_until) <= now then
      out[#out + 1] = close(sid)
    end
  end
  return out
end)
