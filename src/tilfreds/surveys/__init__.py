"""Survey definitions: which questions a survey asks and in what order (P4)."""
