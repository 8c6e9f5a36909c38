"""HTTP-level fakes of the remote APIs (Kubernetes, GKE, Compute), served on loopback for the real clients."""
