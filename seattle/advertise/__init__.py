"""advertise."""
