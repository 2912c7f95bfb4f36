"""Jinja2 templates (package data, loaded through importlib.resources)."""
