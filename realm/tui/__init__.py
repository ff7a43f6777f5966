"""The Textual front end: renders a live mirror of the trainer's state and sends it commands."""
