"""Orchestration per kind: gather the world (I/O), call the pure decide, apply, write status once."""
