"""Audiences: which patients match a set of conditions, counted, sampled and judged by the outbox gates."""
