"""The gke target: a GKE cluster and a Compute firewall rule around the shared Kubernetes target."""
