"""The signaling service: authenticated waiting queue, presence, SDP/ICE relay, doctor console.

Imports nothing else of the project.
"""

__version__ = "0.1.0"
