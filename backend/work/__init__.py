"""Long work staff start and watch: job rows with progress, run on RQ or a background thread."""
