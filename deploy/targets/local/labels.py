"""The labels by which the local target finds exactly what it owns in the Docker Engine."""

ENVIRONMENT = "k8sdeploy.io/environment"
POD = "k8sdeploy.io/pod"
CONTAINER = "k8sdeploy.io/container"
ROLE = "k8sdeploy.io/role"  # infra | init | app | volume
SPEC_HASH = "k8sdeploy.io/spec-hash"
IMAGE = "k8sdeploy.io/image"  # the reference the render asked for (repository:version@digest)
VOLUME_KIND = "k8sdeploy.io/volume-kind"  # emptyDir | pvc
MANAGED_BY = "app.kubernetes.io/managed-by"


def selector(env_name: str, **more: str) -> dict[str, str | list[str] | bool]:
    """A Docker filter for this environment's objects (and nothing else)."""
    pairs = {ENVIRONMENT: env_name, MANAGED_BY: "k8sdeploy", **more}
    return {"label": [f"{key}={value}" for key, value in pairs.items()]}
