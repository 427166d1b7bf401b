"""cabin package."""
