"""Game rules: pure functions over the realm state."""
