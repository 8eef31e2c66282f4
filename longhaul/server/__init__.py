"""What serves the catalog at run time: accepting events and acting on runs (:mod:`.service`), the
dispatcher, the worker, schedule sync, waitpoint and alert delivery, resume, webhooks, and the dev stack's
supervisor. The API (:mod:`longhaul.api`) and the CLI (:mod:`longhaul.cli`) call into it."""
