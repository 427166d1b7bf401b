"""Clinical measurement procedures: readings in, measurements out (pure state machines).

Each procedure follows one vital's protocol (how long to measure, what to exclude, when to
retake, how many readings to combine) and ends with :class:`~vitals.measurement.Measurement`
values, valid or with reasons.  It asks for device actions (start a BP cycle) through
:class:`~vitals.procedures.base.Command` values and never touches a port.
"""
