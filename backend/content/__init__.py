"""The content studio: revisions of authored content, their kinds, and the message catalogue."""
