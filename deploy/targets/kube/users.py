"""The users Secrets on Kubernetes targets (deploy/users.py): read for each `up`, written by `user add` and `user
remove`, which then replace the pods that read the users (their Deployments make new ones, which seed at start-up).
The smoke users' passwords are a Secret of their own that no pod reads."""

from __future__ import annotations

from collections.abc import Callable

from deploy.model.progress import Say, silent
from deploy.model.suite import SEEDED_BY, SMOKE_SECRET, USERS_SECRET
from deploy.targets.kube import INSTANCE, POD, SECRET
from deploy.targets.kube.client import KubeApi
from deploy.users import Stored, Users, from_secrets


class KubeUsers:
    read_at_next_up = False  # applied at once: the Secret written, the pods that read it replaced

    def __init__(self, api: Callable[[], KubeApi | None], namespace: str, env_name: str, say: Say = silent):
        self.api, self.namespace, self.env_name, self.say = api, namespace, env_name, say

    def read(self) -> Stored:
        api = self.api()
        if api is None:
            return Stored()
        return from_secrets(
            api.get(SECRET, self.namespace, USERS_SECRET), api.get(SECRET, self.namespace, SMOKE_SECRET)
        )

    def write(self, users: Users) -> None:
        api = self.api()
        if api is None:
            raise RuntimeError("no cluster to write the users to")  # callers check `deployed` first
        api.apply(SECRET, self.namespace, users.smoke_secret(self.namespace), force=True)
        api.apply(SECRET, self.namespace, users.secret(self.namespace), force=True)
        for pod in api.list(POD, self.namespace, f"{INSTANCE}={self.env_name}"):
            if {c["name"] for c in pod["spec"]["containers"]} & set(SEEDED_BY):
                api.delete(POD, self.namespace, pod["metadata"]["name"])
                self.say(f"replacing pod {pod['metadata']['name']}: its services read the users at start-up")

    @property
    def deployed(self) -> bool:
        api = self.api()
        return api is not None and api.get(SECRET, self.namespace, USERS_SECRET) is not None
