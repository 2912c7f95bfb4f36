"""Prefect flows (orchestration only); installed as ``mlgitops.flows``."""
