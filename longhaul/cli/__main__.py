"""``python -m longhaul.cli``: the ``longhaul`` command (how ``longhaul dev`` starts its children)."""

from longhaul.cli import main

main()
