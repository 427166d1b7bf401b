-- cancel: ARGV prefix, session.
return run(function()
  local rec = live(ARGV[2], 'cabin')
  local ticket = {}
  if rec.ticket then
    ticket = pop_ticket(rec.ticket)
  end
  if #ticket == 0 then
    refuse('not-queued')
  end
  redis.call('HDEL', k('session', rec.id), 'ticket')
  return {'ok', ticket}
end)
