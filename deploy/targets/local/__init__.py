"""The local target: rendered Kubernetes objects run on the local Docker Engine with pod semantics."""
