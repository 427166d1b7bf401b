-- accept: ARGV prefix, ticket, doctor session, call id, now.
-- THE atomic step: every check, then every write, with nothing in between, so of any
-- number of concurrent accepts of one ticket exactly one finds it waiting.
return run(function()
  local ticket_id, call_id, now = ARGV[2], ARGV[4], ARGV[5]
  local doctor = live(ARGV[3], 'doctor')
  local ticket_flat = hgetall(k('ticket', ticket_id))
  if #ticket_flat == 0 then
    if redis.call('EXISTS', k('taken', ticket_id)) == 1 then
      refuse('already-taken')
    end
    refuse('no-such-ticket')
  end
  local ticket = as_map(ticket_flat)
  local hospitals = cjson.decode(doctor.hospitals)
  if ticket.queue ~= '*' and not contains(hospitals, ticket.queue) then
    refuse('forbidden', "that resident is in another hospital's queue")
  end
  if doctor.call then
    refuse('doctor-busy')
  end
  local cabin = session(ticket.session)
  if cabin == nil then
    refuse('internal', 'the waiting resident has no session')
  end
  local hospital = ticket.queue
  if not contains(hospitals, hospital) then
    hospital = hospitals[1] or ticket.queue
  end
  local waited = tonumber(now) - tonumber(ticket.enqueued_at)
  if waited < 0 then
    waited = 0
  end
  remove_ticket(ticket_id, ticket.queue)
  local call_key = k('call', call_id)
  redis.call('HSET', call_key,
    'id', call_id, 'ticket', ticket_id, 'cabin_session', cabin.id,
    'doctor_session', doctor.id, 'hospital', hospital, 'queue', ticket.queue, 'started_at', now,
    'waited_s', string.format('%.17g', waited))
  redis.call('SADD', k('calls'), call_id)
  redis.call('SET', k('taken', ticket_id), call_id)
  local cabin_key = k('session', cabin.id)
  redis.call('HDEL', cabin_key, 'ticket')
  redis.call('HSET', cabin_key, 'call', call_id)
  redis.call('HSET', k('session', doctor.id),
    'before', doctor.presence or 'available', 'call', call_id, 'presence', 'busy')
  return {'ok', hgetall(call_key)}
end)
