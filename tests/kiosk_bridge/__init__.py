"""Tests of the kiosk bridge: identity intake (MRZ, DG13, LDS, passive auth, assertions)."""
