"""Persistence: database models and queries, and file storage."""
