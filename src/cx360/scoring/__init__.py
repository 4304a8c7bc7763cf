"""Stages that score the people of a workspace with the estimators of `cx360.models`:
churn risk, archetypes."""
