"""`k8sdeploy dev`: deploy once, then serve each saved change (sync and restart a service, reload the gateway,
rebuild on a lock file) while the services' logs stream on the terminal."""
