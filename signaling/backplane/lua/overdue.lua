-- overdue: ARGV prefix, now, wait_s, bound. `bound` (a little above now - wait_s) only
-- narrows the scan; the test itself is HubState's `now - notify_after >= wait_s`, in the
-- same double arithmetic. Returns each ticket as it was before being marked, once.
return run(function()
  local now, wait = tonumber(ARGV[2]), tonumber(ARGV[3])
  local out = {'ok'}
  for _, id in ipairs(redis.call('ZRANGEBYSCORE', k('notify'), '-inf', ARGV[4])) do
    local ticket_key = k('ticket', id)
    local flat = hgetall(ticket_key)
    if #flat == 0 then
      redis.call('ZREM', k('notify'), id)
    else
      local ticket = as_map(flat)
      if ticket.notified == '1' then
        redis.call('ZREM', k('notify'), id)
      elseif now - tonumber(ticket.notify_after) >= wait then
        redis.call('HSET', ticket_key, 'notified', '1')
        redis.call('ZREM', k('notify'), id)
        out[#out + 1] = flat
      end
    end
  end
  return out
end)
