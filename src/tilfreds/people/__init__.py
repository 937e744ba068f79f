"""Respondents, the interactions that make them eligible, and the suppression list (objections)."""
