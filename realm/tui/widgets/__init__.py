"""Widgets shared by the screens; each draws from plain values it is handed, never the bus."""
