"""The workflow side of the engine: what a pipeline is and how the catalog collects pipelines
(:mod:`.pipeline`, :mod:`.registry`, :mod:`.catalog`), the helpers workflows call (tracking, metadata,
waitpoints, parallel steps), and longhaul's own workflows (bulk actions, schedules, maintenance).

Everything here runs in Temporal's workflow sandbox: deterministic, no I/O."""
