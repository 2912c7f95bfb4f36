"""deploy: see docs/architecture.md."""
