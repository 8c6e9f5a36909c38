"""authorisation: answers whether a caller holds a permission."""
