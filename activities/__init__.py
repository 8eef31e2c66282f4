"""Activities: every side effect of longhaul, each idempotent so that a retry never does work twice."""
