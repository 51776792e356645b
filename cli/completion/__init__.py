"""completion package."""
