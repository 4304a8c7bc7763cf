"""Decisions: the next best action for each customer, with the channel and the hour, within the contact
policy and consent. `settings` holds the workspace file's models; `decide` is the entry point."""
