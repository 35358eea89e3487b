"""Access control: token validation, sharing agreements (ODRL), and what they decide."""
