-- queue: ARGV prefix, hospital, ... A consistent snapshot: the tickets of these hospitals'
-- queues and of the any-hospital queue, and the presence counts of their live doctors
-- (each doctor once, parked doctors not at all). Python sorts the tickets.
return run(function()
  local hospitals, queues, seen = {}, {'*'}, {['*'] = true}
  for i = 2, #ARGV do
    hospitals[#hospitals + 1] = ARGV[i]
    if not seen[ARGV[i]] then
      seen[ARGV[i]] = true
      queues[#queues + 1] = ARGV[i]
    end
  end
  local tickets = {}
  for _, queue in ipairs(queues) do
    for _, id in ipairs(redis.call('ZRANGE', k('queue', queue), 0, -1)) do
      local flat = hgetall(k('ticket', id))
      if #flat > 0 then
        tickets[#tickets + 1] = flat
      end
    end
  end
  local counts, counted = {available = 0, busy = 0, away = 0}, {}
  for _, hospital in ipairs(hospitals) do
    for _, sid in ipairs(redis.call('SMEMBERS', k('doctors', hospital))) do
      if not counted[sid] then
        counted[sid] = true
        local state = redis.call('HMGET', k('session', sid), 'presence', 'parked_until')
        if state[1] and not state[2] and counts[state[1]] ~= nil then
          counts[state[1]] = counts[state[1]] + 1
        end
      end
    end
  end
  return {'ok', tickets, counts.available, counts.busy, counts.away}
end)
