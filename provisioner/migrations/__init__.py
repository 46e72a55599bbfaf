"""Alembic migrations of the state DB; StateDB upgrades to head when it opens a DB.

A new table or column is a new file in versions/ (never an edit of an old one),
so a DB of any earlier release upgrades without losing a row.
"""
