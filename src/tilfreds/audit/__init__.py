"""Append-only, hash-chained log of who did what to which record; never personal values."""
