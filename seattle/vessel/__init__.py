"""vessel."""
