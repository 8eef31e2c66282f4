"""Workflows: deterministic orchestration only (timers, signals, activities); never I/O."""
