"""The cabin service: the visit, the resident UI, the media peer, and the wiring of all parts.

Nothing imports this package; it imports all the others.
"""

__version__ = "0.1.0"
