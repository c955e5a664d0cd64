"""Backups: an encrypted archive of the database and the media files, with a manifest, and its restore."""
