"""frontend: the server-rendered pages, talking to the person service as the caller the gateway named."""
