"""longhaul: durable workflows for long-running processes, on Temporal — the engine, as a library.

Pipeline authors import :mod:`longhaul.sdk`; the rest is the engine's: the API and dashboard
(:mod:`longhaul.api`), the CLI (:mod:`longhaul.cli`), the Python client (:mod:`longhaul.client`), what serves
an application's catalog (:mod:`longhaul.server`), and app storage. The package imports nothing of the
application it serves: it finds it (:mod:`longhaul.project`) and reads its catalog.
"""
