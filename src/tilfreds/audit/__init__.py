"""Append-only, keyed (HMAC) chain of who did what to which record; never personal values."""
