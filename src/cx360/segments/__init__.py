"""Segments: declared audiences over traits, scores and recent events; RFM cells; behavioural clusters."""
