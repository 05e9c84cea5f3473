"""Drives executions: applies the state machine to stored state, creates and dispatches jobs,
handles results, timeouts, retries and recovery after a crash."""
