"""Who may use the API and the console: bearer tokens with a role. Operator roles come later."""
