"""Tests of the cabin's media building blocks: camera, pattern, microphone, ladder, framing."""
