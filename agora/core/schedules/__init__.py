"""Schedules: triggers (cron, interval, one time) and the scheduler that fires their ticks exactly once."""
