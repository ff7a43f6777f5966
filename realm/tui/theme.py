"""The realm's own colour theme (Textual's built-in themes stay available in the palette)."""

from textual.theme import Theme

REALM_THEME = Theme(
    name="realm",
    primary="#c9a227",  # old gold
    secondary="#8a6fd1",
    accent="#5fb8e6",
    warning="#e8a33d",
    error="#d9534f",
    success="#6fbf73",
    foreground="#e8e2d0",
    background="#15131b",
    surface="#1e1b27",
    panel="#2a2536",
    dark=True,
)
