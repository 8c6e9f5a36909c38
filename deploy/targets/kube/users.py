"""The users Secret on Kubernetes targets (deploy/users.py): read for each `up`, written by `user add`, which
then replaces the pods that read it (their Deployments make new ones, which seed at start-up)."""

from __future__ import annotations

from collections.abc import Callable

from deploy.model.progress import Say, silent
from deploy.model.suite import SEEDED_BY, USERS_SECRET, User
from deploy.targets.kube import INSTANCE, POD, SECRET
from deploy.targets.kube.client import KubeApi
from deploy.users import Users, from_secret


class KubeUsers:
    def __init__(self, api: Callable[[], KubeApi | None], namespace: str, env_name: str, say: Say = silent):
        self.api, self.namespace, self.env_name, self.say = api, namespace, env_name, say

    def read(self) -> dict[int, User]:
        api = self.api()
        return from_secret(api.get(SECRET, self.namespace, USERS_SECRET)) if api is not None else {}

    def write(self, users: Users) -> None:
        api = self.api()
        if api is None:
            raise RuntimeError("no cluster to write the users to")  # callers check `deployed` first
        api.apply(SECRET, self.namespace, users.secret(self.namespace), force=True)
        for pod in api.list(POD, self.namespace, f"{INSTANCE}={self.env_name}"):
            if {c["name"] for c in pod["spec"]["containers"]} & set(SEEDED_BY):
                api.delete(POD, self.namespace, pod["metadata"]["name"])
                self.say(f"replacing pod {pod['metadata']['name']}: its services read the users at start-up")

    @property
    def deployed(self) -> bool:
        api = self.api()
        return api is not None and api.get(SECRET, self.namespace, USERS_SECRET) is not None
