"""Demo data for `careloop demo` and `make run`."""
