"""Spend budgets for judge calls: per task, evaluator, provider or everything, per day or
month, in dollars or tokens (``models``); the guard the task engine asks before each judge call
and tells after it (``guard``); their pages and API."""
