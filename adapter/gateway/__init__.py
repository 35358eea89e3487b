"""HTTP surfaces of the adapter."""
