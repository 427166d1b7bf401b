"""The cabin's media building blocks: camera, microphone, test pattern, ladder, framing, quality.

Each module holds one thing, with a pure core and a thin shell around it:

- ``pattern``: a test-pattern frame whose pixels carry a frame counter and a capture time
  (read back after encoding for glass-to-glass latency).
- ``camera``: ``CameraSource``, the one owner of the camera (an OpenCV device, a looped video
  file or the test pattern), and the video tracks it hands to the call and the self-view.
- ``microphone``: the audio track (a device through ``av``, or ``tone`` / ``silence``).
- ``ladder``: the degradation ladder 720p30 -> 480p30 -> 480p15 -> audio only.
- ``framing``: the framing assist (face position -> "move closer / to the centre").
- ``quality``: the per-call quality record from ``RTCPeerConnection.getStats()``.

The peer-connection driver (``peer``) plugs these together.
"""
