"""Wire protocols of the cabin's sensors: pure framers, frame types and host commands.

Nothing here does I/O.  Each module holds one device family: its link settings, a frame type
with ``parse`` (bytes -> frame, raising :class:`vitals.errors.FrameError`) and ``__bytes__``
(frame -> the same bytes), host commands where the device takes them, and ``framer()``, an
incremental :class:`~vitals.protocols.framing.Framer` that never raises on bad input.
"""
