"""The composition root: every client (Docker, Kubernetes, cloud APIs) is created here, once."""

from __future__ import annotations

from typing import Callable

import docker
from docker.errors import DockerException

from .environments import Environment
from .errors import ConfigError
from .targets import Target

Say = Callable[[str], None]


def docker_client() -> docker.DockerClient:
    try:
        client = docker.from_env()
        client.ping()
    except DockerException as exc:
        raise ConfigError(f"cannot reach the Docker Engine ({str(exc).splitlines()[0][:160]})",
                          "start it with `make docker-engine` or set DOCKER_HOST") from None
    return client


def make_target(environment: Environment, say: Say) -> Target:
    if environment.target == "local":
        from .targets.local.target import LocalTarget

        return LocalTarget(docker_client(), environment.name, say=say)
    raise ConfigError(f"environment {environment.name!r} uses the {environment.target} target, which this "
                      "version of k8sdeploy cannot deploy to yet", "use an environment with target = \"local\"")
