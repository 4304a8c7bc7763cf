"""Collected events on their way to the warehouse: the event log, its transports and the drain."""
