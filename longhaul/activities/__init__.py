"""The engine's activities: run records, events emitted from workflows, waitpoints, bulk actions and
maintenance, and :class:`~.resources.Resources`, what every activity of a worker shares."""
