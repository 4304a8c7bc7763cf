"""Funnels and form analytics over the events of every channel, resolved to people through identity."""
