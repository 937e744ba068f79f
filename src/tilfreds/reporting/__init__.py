"""Read-only aggregates for analysts. Small groups are hidden (k-anonymity)."""
