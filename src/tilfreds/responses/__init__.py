"""Answers to surveys: what the respondent submitted, with date and time (P2, P4, P5, P9)."""
