"""Social listening: watch-list mentions with their tone over time, prospects, and leads for the CRM."""
