"""The seam to the digital citizen station's kiosk: identity intake, service-flow API, events.

Imports nothing else of the project.
"""
