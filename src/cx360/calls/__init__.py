"""The contact centre: why a customer calls (the call-reason forecast), where the call goes (the
routing table), what the agent should know (prior issues), and what happened next (outcomes)."""
