"""Scheduled follow-up: publishing questionnaires, plans, the daily planner, the dispatcher, responses."""
