"""Outreach operations: batches to a segment or an uploaded list, previewed, approved, sent and reported."""
