"""Starters: the ways work enters longhaul (HTTP API, CLI, Python client) and the processes that run it."""
