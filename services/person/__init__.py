"""person: the people register, every action checked with the authorisation service."""
