"""Local stand-ins for external services (a payment provider), for development and tests."""
