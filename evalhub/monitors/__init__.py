"""Monitors, alerts and automations: a metric of a project watched window by window, alerts sent to notification channels, rules acting on results as they are written."""
