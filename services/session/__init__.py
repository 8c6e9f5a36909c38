"""session: issues access tokens for a caller id, resolves and revokes them."""
