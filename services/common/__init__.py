"""What the five services share: configuration, database start-up, the app skeleton, the server."""
