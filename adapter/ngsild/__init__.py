"""NGSI-LD: JSON-LD contexts (local copies) and, later, the broker client."""
