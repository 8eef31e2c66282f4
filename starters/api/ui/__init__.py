"""The runs dashboard: server-rendered pages at ``/ui`` (see :mod:`starters.api.ui.pages`)."""

from starters.api.ui.pages import STATIC, router

__all__ = ["STATIC", "router"]
