"""A local payment provider that behaves like real ones, for development and tests.

What real providers do and this one does too: idempotency keys on charges and refunds (a repeated key
returns the first answer, a key reused for another request is refused), latency, transient 5xx errors
(before or after the charge was made), responses so slow the client gives up, declines, and asynchronous
confirmation of a charge by a signed webhook. A ledger of every operation with its time lets tests check
that nobody was charged twice and that rate limits held.

Charges, idempotency keys, the ledger and confirmations still to send are kept in its own SQLite file
(``<data dir>/payments.db``), so a restart forgets nothing: a key repeated after a restart gets the first
answer, a charge due for confirmation is confirmed, a webhook not yet accepted is sent again. Faults are
run-time settings and start afresh (``POST /admin/faults``). The provider stands for a separate company's
system: its file is its own, made at start (no migrations), never part of app storage.

Run it with ``longhaul payments`` (``longhaul dev`` starts it).
"""

from providers.payments.app import create_provider

__all__ = ["create_provider"]
