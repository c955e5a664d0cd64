"""The outbound pipeline: queue into the outbox, gate (consent, exclusions, quiet hours, caps), send."""
