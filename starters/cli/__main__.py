"""``python -m starters.cli``: the ``longhaul`` command (how ``longhaul dev`` starts its children)."""

from starters.cli import main

main()
