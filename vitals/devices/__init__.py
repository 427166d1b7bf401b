"""Device drivers: the sans-I/O conversation with each sensor model.

A driver knows what to send a device (start commands, keep-alives, polls) and how its frames
become :class:`~vitals.model.Reading` values.  It does no I/O: a
:class:`~vitals.session.DeviceSession` moves its bytes.  ``catalog`` names every driver.
"""
