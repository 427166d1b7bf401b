-- enqueue: ARGV prefix, queue score, then the ticket's hash as field, value, ...
return run(function()
  local fields = {}
  for i = 3, #ARGV do
    fields[#fields + 1] = ARGV[i]
  end
  local ticket = as_map(fields)
  local rec = live(ticket.session, 'cabin')
  if rec.call then
    refuse('in-call')
  end
  if rec.ticket then
    refuse('already-queued')
  end
  redis.call('HSET', k('ticket', ticket.id), unpack(fields))
  redis.call('ZADD', k('queue', ticket.queue), ARGV[2], ticket.id)
  redis.call('SADD', k('queues'), ticket.queue)
  if ticket.notified ~= '1' then
    redis.call('ZADD', k('notify'), ticket.notify_after, ticket.id)
  end
  redis.call('HSET', k('session', rec.id), 'ticket', ticket.id)
  return {'ok'}
end)
