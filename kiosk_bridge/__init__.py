"""kiosk_bridge package."""
