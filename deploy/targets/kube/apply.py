"""Apply stage for Kubernetes: server-side apply in a fixed kind order, prune by owner labels, replace on immutable."""

from __future__ import annotations

import copy
import hashlib
import json
import re
import time
from collections.abc import Callable, Iterator, Sequence
from functools import partial
from itertools import groupby
from typing import TypeVar

from deploy.model.errors import ApplyError, ConfigError, ForbiddenError, KubeApiError
from deploy.model.progress import Say, silent
from deploy.model.status import ApplyResult
from deploy.targets.kube import (
    APPLIED,
    DEPLOYMENT,
    INSTANCE,
    KINDS,
    MANAGED_BY,
    MANAGER,
    NAMESPACE,
    PVC,
    SECRET,
    Resource,
    describe,
    kind_of,
    owned_by,
    owner_selector,
)
from deploy.targets.kube.client import KubeApi, together
from deploy.targets.kube.edits import hand_edits
from deploy.targets.kube.scoped import Scoped

T = TypeVar("T")

# The API server's words for a change it will not patch in place: a Deployment's selector ("field is
# immutable"), a StatefulSet's spec beyond its mutable fields ("updates to statefulset spec for fields
# other than 'replicas', ... are forbidden").
TLS_KEYS = ("tls.crt", "tls.key")
IMMUTABLE = re.compile(r"field is immutable|may not change fields|updates to statefulset spec for fields other than")


# Kinds applied side by side, wave after wave in KINDS order: what pods use (ConfigMaps, Secrets, claims) and the
# Services, then the workloads, then the NetworkPolicies; nothing in a wave needs another of it to be there first.
WAVES = {
    "Namespace": 0,
    "ConfigMap": 1,
    "Secret": 1,
    "PersistentVolumeClaim": 1,
    "Service": 1,
    "PodDisruptionBudget": 1,
    "Deployment": 2,
    "StatefulSet": 2,
    "Pod": 2,
    "NetworkPolicy": 3,
}


def applied_digest(obj: dict) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:20]


def mounted_secrets(objects: Sequence[dict]) -> dict[str, tuple[str, ...]]:
    """Secret name -> keys the workloads' pods mount from it (a whole kubernetes.io/tls Secret: its two keys)."""
    found: dict[str, tuple[str, ...]] = {}
    for obj in objects:
        spec = obj.get("spec", {}).get("template", {}).get("spec", {})
        for volume in spec.get("volumes", []):
            secret = volume.get("secret")
            if secret:
                items = tuple(item["key"] for item in secret.get("items", [])) or TLS_KEYS
                found[secret["secretName"]] = tuple(sorted({*found.get(secret["secretName"], ()), *items}))
    return found


def read_secrets(objects: Sequence[dict]) -> dict[str, tuple[str, ...]]:
    """Secret name -> keys the workloads' containers must read into their environment (an optional one aside)."""
    found: dict[str, tuple[str, ...]] = {}
    for obj in objects:
        spec = obj.get("spec", {}).get("template", {}).get("spec", {})
        for container in (*spec.get("initContainers", []), *spec.get("containers", [])):
            for variable in container.get("env", []):
                ref = (variable.get("valueFrom") or {}).get("secretKeyRef")
                if ref and not ref.get("optional"):
                    found[ref["name"]] = tuple(sorted({*found.get(ref["name"], ()), ref["key"]}))
    return found


def kept(desired: Sequence[dict]) -> set[tuple[Resource, str]]:
    """What a prune leaves: the objects rendered, and the Secrets their pods mount. The gateway's certificate is
    applied only when given ($K8SDEPLOY_TLS_CERT, deploy/tls.py): an up without it keeps the one it applied before,
    which the gateway still serves."""
    mounted = {(SECRET, name) for name in mounted_secrets(desired)}
    return {(kind_of(obj), obj["metadata"]["name"]) for obj in desired} | mounted


def allowed(call: Callable[[], T], kind: Resource, forbidden: dict[Resource, str] | None) -> Callable[[], T | None]:
    """`call`, whose ForbiddenError is put in `forbidden` (kind -> the request refused) and answered None; raised
    when `forbidden` is None."""

    def run() -> T | None:
        try:
            return call()
        except ForbiddenError as exc:
            if forbidden is None:
                raise
            forbidden[kind] = exc.request
            return None

    return run


def conflicting_managers(exc: KubeApiError) -> set[str]:
    causes = (json.loads(exc.body or "{}").get("details") or {}).get("causes") or []
    found = {m.group(1) for cause in causes if (m := re.search(r'conflict with "([^"]+)"', cause.get("message", "")))}
    return found or set(re.findall(r'conflict with "([^"]+)"', exc.body or ""))


def refused(obj: dict, exc: KubeApiError) -> ApplyError:
    return ApplyError(
        f"the API server refused {describe(obj)}: {exc.api_message}",
        "fix the rendered object (or the cluster) and apply again",
    )


def defaulted_rolling_update_in_the_way(obj: dict, live: dict) -> bool:
    """A Deployment going to Recreate while the live one has the rollingUpdate the API server defaulted."""
    wanted = (obj.get("spec") or {}).get("strategy") or {}
    return wanted.get("type") == "Recreate" and bool((live["spec"].get("strategy") or {}).get("rollingUpdate"))


def needs_apply(obj: dict, live: dict | None, edits: tuple[str, ...]) -> bool:
    """Whether `up` sends `obj` at all: it is new, edited by hand, or its rendered digest changed."""
    if live is None or edits:
        return True
    return ((live.get("metadata") or {}).get("annotations") or {}).get(APPLIED) != obj["metadata"]["annotations"][
        APPLIED
    ]


class Applier(Scoped):
    """Makes the namespace hold exactly the rendered objects of one environment, touching nothing else.

    What the namespace holds is read once per diff or apply (`survey`, its lists side by side), and an apply right
    after a diff (`up` says what it changes first) takes what that diff read. Objects are applied side by side, in
    waves of kinds (WAVES)."""

    def __init__(self, api: KubeApi, namespace: str, env_name: str, say: Say = silent, poll: float = 0.5):
        super().__init__(api, namespace, env_name, say, poll)
        self.readings: dict[tuple[str, str], dict | None] = {}  # (kind, name) -> as the diff read it
        self.listed: dict[Resource, dict[str, dict]] | None = None  # this pass's survey: kind -> name -> our object
        self.names: dict[Resource, set[str]] = {}  # kind -> the names of every object of it (where ours lacked one)
        # what the last apply found, when it changed nothing: what runs now (Readiness's first look)
        self.unchanged: dict[Resource, list[dict]] | None = None

    def survey(
        self, desired: Sequence[dict], namespace_exists: bool = True, forbidden: dict[Resource, str] | None = None
    ) -> None:
        """Read what the namespace holds: our objects, one list per kind; then, for the kinds of which a desired
        object is not among ours, the names of all their objects (metadata only: another's Secret is not read), so
        that one of them by that name, not ours, is found. Nothing is read of a namespace that is not there. Our
        Secrets are listed as metadata too: their data is read only for one that is to be sent (live).
        `forbidden` (a diff as a read-only identity): a kind this identity may not list is put there (kind -> the
        request refused) and read as holding nothing, rather than stopping."""
        kinds = KINDS[1:]
        ours = owner_selector(self.env_name)
        lists = (
            together(
                [
                    allowed(partial(self.api.list, kind, self.namespace, ours, "", kind == SECRET), kind, forbidden)
                    for kind in kinds
                ]
            )
            if namespace_exists
            else []
        )
        self.listed = {kind: {} for kind in kinds}
        for kind, found in zip(kinds, lists, strict=False):
            self.listed[kind] = {obj["metadata"]["name"]: obj for obj in found or ()}
        missing = sorted(
            {kind_of(obj) for obj in desired if obj["metadata"]["name"] not in self.listed.get(kind_of(obj), {})}
            - {NAMESPACE},
            key=KINDS.index,
        )
        names = (
            together([allowed(partial(self.api.names, kind, self.namespace), kind, forbidden) for kind in missing])
            if namespace_exists
            else []
        )
        self.names = {kind: set() for kind in missing}
        self.names.update((kind, found or set()) for kind, found in zip(missing, names, strict=False))

    def apply(self, objects: Sequence[dict]) -> ApplyResult:
        self.unchanged = None
        try:
            result = self._apply(objects)
            if not result.changed and self.listed is not None:
                self.unchanged = {kind: list(found.values()) for kind, found in self.listed.items()}
            return result
        finally:
            self.readings.clear()  # what was not used is not trusted later (an apply that failed half-way)
            self.listed, self.names = None, {}

    def _apply(self, objects: Sequence[dict]) -> ApplyResult:
        desired = sorted((self.prepare(obj) for obj in objects), key=lambda o: KINDS.index(kind_of(o)))
        created = not any(kind_of(obj) == NAMESPACE for obj in desired) and self.ensure_namespace()
        self.require_secrets(desired)
        if self.listed is None or created:  # no diff just before (or its namespace has gone since)
            self.readings.clear()
            self.survey(desired, namespace_exists=not created)
        outcome: dict[str, list[str]] = {"created": [], "updated": [], "replaced": [], "unchanged": []}
        for _, group in groupby(desired, key=lambda obj: WAVES[kind_of(obj).kind]):
            objs = list(group)
            for obj, result in zip(objs, together([partial(self.apply_one, obj) for obj in objs]), strict=True):
                outcome[result].append(describe(obj))
        removed = self.prune(kept(desired))
        return ApplyResult(
            created=tuple(outcome["created"]),
            updated=tuple(outcome["updated"]),
            replaced=tuple(outcome["replaced"]),
            unchanged=tuple(outcome["unchanged"]),
            removed=removed,
        )

    def require_secrets(self, desired: Sequence[dict]) -> None:
        """Secrets the pods mount but k8sdeploy does not make (the gateway's certificate) must be there, with the
        keys they need, before anything changes: a pod waiting for a missing Secret is a slow way to find out."""
        ours = {obj["metadata"]["name"] for obj in desired if kind_of(obj) == SECRET}
        read = read_secrets(desired)
        for name, keys in sorted({**mounted_secrets(desired), **read}.items()):
            if name in ours:
                continue
            live = self.api.get(SECRET, self.namespace, name)
            missing = sorted(set(keys) - set((live or {}).get("data") or {}))
            if live is None or missing:
                state = "does not exist" if live is None else f"lacks {', '.join(missing)}"
                if name.startswith("k8sdeploy-"):  # the users' or the parts' identity keys: the Runner applies them
                    raise ConfigError(
                        f"Secret {name} in namespace {self.namespace}, which the pods mount, {state}",
                        "it is k8sdeploy's own: deploy with `k8sdeploy up`, which applies it with the objects",
                    )
                if name in read:  # the environment's own MySQL server (mysql_server)
                    raise ConfigError(
                        f"Secret {name} in namespace {self.namespace}, which holds the services' DATABASE_URL, {state}",
                        f"create it with a key per service, e.g. kubectl -n {self.namespace} create secret generic "
                        f"{name} --from-literal={keys[0]}=mysql://USER:PASSWORD@ADDRESS:3306/DB ...; then run again",
                    )
                raise ConfigError(
                    f"Secret {name} in namespace {self.namespace}, which the gateway serves HTTPS with, {state}",
                    f"create it: kubectl -n {self.namespace} create secret tls "
                    f"{name} --cert=CERT.pem --key=KEY.pem (or let cert-manager make it), then run "
                    "again",
                )

    def prepare(self, obj: dict) -> dict:
        """A copy in our namespace, with the digest by which a second apply knows nothing changed."""
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if not owned_by(obj, self.env_name):
            raise ApplyError(
                f"{describe(obj)} lacks the labels {MANAGED_BY}={MANAGER} and {INSTANCE}={self.env_name}",
                "render every object with the owner labels (a render bug)",
            )
        if kind_of(obj).namespaced:
            meta["namespace"] = self.namespace
        meta.setdefault("annotations", {}).pop(APPLIED, None)
        meta["annotations"][APPLIED] = applied_digest(obj)
        return obj

    def live(self, obj: dict, keep: bool = False) -> dict | None:
        """The object as it is now (None: absent), or as the diff just before read it; refused when it is there and
        not ours. `keep`: the diff's reading, kept for the apply that follows."""
        kind, name = kind_of(obj), obj["metadata"]["name"]
        key = (kind.kind, name)
        listed = (self.listed or {}).get(kind, {})
        if key in self.readings and not keep:  # the diff's (a diff always reads anew)
            live = self.readings.pop(key)
        elif name in listed:
            live = listed[name]
            if kind == SECRET and needs_apply(obj, live, hand_edits(live)):  # surveyed as metadata only: read it
                live = self.api.get(kind, self.namespace, name)
        elif kind in self.names and name not in self.names[kind]:
            live = None
        else:  # there and not ours (or not surveyed): read it
            live = self.api.get(kind, self.namespace, name)
        if keep:
            self.readings[key] = live
        if live is not None and not owned_by(live, self.env_name):
            raise ApplyError(
                f"{describe(obj)} already exists in namespace {self.namespace} and is not "
                f"k8sdeploy's for environment {self.env_name}",
                "delete or rename that object, or deploy to another namespace; k8sdeploy never "
                "overwrites what it does not own",
            )
        return live

    def apply_one(self, obj: dict) -> str:
        kind = kind_of(obj)
        live = self.live(obj)
        live_annotations = (live or {}).get("metadata", {}).get("annotations") or {}
        edits = hand_edits(live) if live is not None else ()
        if not needs_apply(obj, live, edits):
            return "unchanged"
        if live is not None and kind == DEPLOYMENT:
            self.clear_defaulted_rolling_update(obj, live)
        try:
            # an object k8sdeploy applied before (it bears the digest) takes back what was changed by hand
            answer = self.server_side_apply(kind, obj, edits if APPLIED in live_annotations else ())
        except KubeApiError as exc:
            if exc.status != 422 or not IMMUTABLE.search(exc.body or ""):
                raise refused(obj, exc) from None
            self.replace(kind, obj, exc.api_message)
            return "replaced"
        if live is not None and answer.get("metadata", {}).get("resourceVersion") == live["metadata"].get(
            "resourceVersion"
        ):
            if edits:
                self.say(
                    f"note: {describe(obj)} keeps changes made by hand to fields k8sdeploy does not set: "
                    + "; ".join(edits)
                )
            return "unchanged"
        self.say(f"{'created' if live is None else 'updated'} {describe(obj)}")
        return "created" if live is None else "updated"

    def server_side_apply(self, kind: Resource, obj: dict, edits: tuple[str, ...], dry_run: bool = False) -> dict:
        """Apply; on a conflict with our own earlier writes, or with hand `edits` of our object, take the fields
        back. `dry_run`: the same requests with dryRun=All, and nothing said."""
        try:
            return self.api.apply(kind, self.namespace, obj, dry_run=dry_run)
        except KubeApiError as exc:
            if exc.status != 409:
                raise
            others = conflicting_managers(exc) - {MANAGER}
            if others and not edits:
                raise ApplyError(
                    f"{describe(obj)}: fields are also managed by {', '.join(sorted(others))} ({exc.api_message})",
                    "remove those managers' changes (or the object) so k8sdeploy alone manages it",
                ) from None
            if others and not dry_run:
                self.say(f"{describe(obj)} was changed by hand ({'; '.join(edits)}); putting back the rendered fields")
            return self.api.apply(kind, self.namespace, obj, force=True, dry_run=dry_run)

    def clear_defaulted_rolling_update(self, obj: dict, live: dict) -> None:
        """A Deployment going from RollingUpdate to Recreate (sqlite to mysql and back): the API server defaulted
        `strategy.rollingUpdate`, which no manager owns, so an apply cannot remove it and Recreate is refused
        with it; clear it, with the new type, in one merge patch first."""
        if defaulted_rolling_update_in_the_way(obj, live):
            self.say(f"{describe(obj)}: switching to Recreate, clearing the rollingUpdate the API server defaulted")
            cleared = {"spec": {"strategy": {"type": "Recreate", "rollingUpdate": None}}}
            self.api.request(
                "PATCH",
                DEPLOYMENT.path(self.namespace, obj["metadata"]["name"]),
                {"fieldManager": MANAGER},
                cleared,
                "application/merge-patch+json",
            )

    def replace(self, kind: Resource, obj: dict, why: str) -> None:
        name = obj["metadata"]["name"]
        self.say(f"replacing {describe(obj)}: {why}")
        self.api.delete(kind, self.namespace, name)
        deadline = time.monotonic() + 120
        while self.api.get(kind, self.namespace, name) is not None:
            if time.monotonic() > deadline:
                raise ApplyError(
                    f"{describe(obj)} was deleted to be replaced but is still there after 120 s",
                    "look for finalizers on it (kubectl get -o yaml) and apply again",
                )
            time.sleep(self.poll)
        self.api.apply(kind, self.namespace, obj)

    def stale(self, keep: set) -> Iterator[tuple[Resource, dict]]:
        """The objects k8sdeploy applied for this environment that the render no longer has (a layout switch),
        in the order prune takes them. Only what bears our digest annotation was applied by us: a claim a
        StatefulSet made from its template carries the template's labels, not the annotation."""
        if self.listed is None:
            self.survey(())
        for kind in reversed(KINDS[1:]):
            for live in (self.listed or {}).get(kind, {}).values():
                meta = live["metadata"]
                if (kind, meta["name"]) not in keep and APPLIED in (meta.get("annotations") or {}):
                    yield kind, live

    def prune(self, keep: set) -> tuple[str, ...]:
        """Delete the stale objects. Claims hold data: they are kept, with a note, until `down --volumes`."""
        removed = []
        for kind, live in self.stale(keep):
            name = live["metadata"]["name"]
            if kind == PVC:
                self.say(f"kept {kind.kind}/{name}: it holds data (`k8sdeploy down --volumes` removes it)")
                continue
            self.api.delete(kind, self.namespace, name)
            removed.append(f"{kind.kind}/{name}")
            self.say(f"pruned {removed[-1]}")
        return tuple(removed)
