"""Shared core of longhaul: settings, models, app storage and the Temporal client.

Imports go one way: ``starters`` → ``workflows`` → ``activities`` → ``longhaul`` (this package).
"""
