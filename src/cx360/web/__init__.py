"""The dashboard: server-rendered pages over the same services, masking and audit as the API."""
