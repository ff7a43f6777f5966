"""Realm of Training: an idle RPG whose game is a real, continuously running fine-tuning system."""

__version__ = "0.1.0"
