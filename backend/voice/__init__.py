"""Voice calls in the backend: call records, the Media Stream route, the engines per language."""
