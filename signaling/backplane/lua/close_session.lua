-- close_session: ARGV prefix, session.
return run(function()
  local closed = close(ARGV[2])
  if closed == nil then
    return {'none'}
  end
  return {'ok', closed}
end)
