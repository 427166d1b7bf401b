-- park: ARGV prefix, session, until.
return run(function()
  if redis.call('EXISTS', k('session', ARGV[2])) == 0 then
    return {'none'}
  end
  local parked = park(ARGV[2], ARGV[3])
  return {'ok', parked[1], parked[2], parked[3]}
end)
