-- renew: ARGV prefix, session, now. Restarts the no-doctor timer; the place is kept.
return run(function()
  local rec = live(ARGV[2], 'cabin')
  local ticket = {}
  if rec.ticket then
    ticket = hgetall(k('ticket', rec.ticket))
  end
  if #ticket == 0 then
    refuse('not-queued')
  end
  local ticket_key = k('ticket', rec.ticket)
  redis.call('HSET', ticket_key, 'notified', '0', 'notify_after', ARGV[3])
  redis.call('ZADD', k('notify'), ARGV[3], rec.ticket)
  return {'ok', hgetall(ticket_key)}
end)
