"""HTTP: the FastAPI application, patient pages and the staff web UI."""
