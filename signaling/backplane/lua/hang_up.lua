-- hang_up: ARGV prefix, session, call id.
return run(function()
  local rec = live(ARGV[2], nil)
  if rec.call ~= ARGV[3] then
    refuse('not-in-call')
  end
  local call = end_call(ARGV[3])
  if #call == 0 then
    refuse('not-in-call')
  end
  return {'ok', call}
end)
