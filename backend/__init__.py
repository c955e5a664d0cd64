"""State and staff side: models, migrations, services, HTTP, jobs, settings, CLI (the composition root)."""
