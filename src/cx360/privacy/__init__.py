"""Consents and the one policy check that every use of personal data for a purpose goes through;
retention (cx360.privacy.retention); the suppression list of erased people (cx360.privacy.suppression)."""
