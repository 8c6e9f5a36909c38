"""Whether a deploy may happen: one policy for every command that changes what an environment runs (DEPLOYS),
applied by the Runner (Runner.admit) before anything is built, pushed or applied, and before any cloud or
cluster is asked anything. The commands only pass their flags."""

from __future__ import annotations

from deploy.model.environments import Environment, refuse_plain_http
from deploy.model.errors import ConfigError
from deploy.model.progress import Say

DEPLOYS = ("up", "dev", "rollback", "promote")  # the Runner's ways to change what runs; each calls admit() first


def admit(environment: Environment, action: str, say: Say, build_in_place: bool = False) -> None:
    """Refuse (ConfigError, exit 2) a deploy the environment does not allow; say the risks it accepts."""
    if action not in DEPLOYS:
        raise ValueError(f"{action!r} is not a deploy ({', '.join(DEPLOYS)})")
    table = f"[environments.{environment.name}]"
    if action in ("up", "dev") and environment.promote_from and not build_in_place:
        raise ConfigError(
            f"environment {environment.name} runs what is promoted from {environment.promote_from}, not what is "
            f"built for it (promote_from in {table})",
            f"run `k8sdeploy promote --from {environment.promote_from} --to {environment.name}`"
            + (", or `k8sdeploy up --build-in-place` to build for it anyway" if action == "up" else ""),
        )
    refuse_plain_http(environment, say)
    if environment.gke is not None:  # a cluster it creates must be able to pull the images
        problem = environment.gke.node_account_problem(f"[environments.{environment.name}.gke]")
        if problem is not None:
            raise problem
    if action == "dev" and environment.verify is not None:
        if not environment.dev:
            raise ConfigError(
                f"environment {environment.name} sets verify, and `dev` deploys uncommitted work",
                f"use `k8sdeploy up` there, or set dev = true in {table} to allow development deploys "
                "(signed with its signing_key, which verify checks as for `up`)",
            )
