"""Tests of the questionnaire engine (loader, branching, scoring) and of the built-in library."""
