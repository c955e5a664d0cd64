"""Voice calls in the backend: call records and their verbs, the dialer, campaigns, engines per language."""
