"""Device simulators that speak each sensor's real wire protocol.

A simulator is pure: given a physiological :class:`~vitals.sim.truth.Truth`, a seed and the
scenario time, it says which bytes the device would have sent, and how it answers the host's
commands.  :mod:`vitals.sim.runtime` puts simulators on pseudo-terminal pairs so the real serial
code path is exercised.
"""
