"""The composition root: settings, database, server, CLI, jobs and periodic work."""
