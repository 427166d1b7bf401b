-- claim_token: ARGV prefix, token id, until, now, px (ms for Redis to keep the key).
-- As in HubState.claim_token, a claim holds while `until` >= now by the callers' clock (a
-- stale one is taken over); PX, a margin past `until`, only lets Redis forget it later.
return run(function()
  local key = k('token', ARGV[2])
  local claimed = redis.call('GET', key)
  if claimed and tonumber(claimed) >= tonumber(ARGV[4]) then
    return {'ok', 0}
  end
  redis.call('SET', key, ARGV[3], 'PX', ARGV[5])
  return {'ok', 1}
end)
