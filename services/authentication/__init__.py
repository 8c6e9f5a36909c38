"""authentication: checks an email address and password, answers with the caller id."""
