"""Waits driven by watches (deploy/targets/kube/watch.py), against the real API server: a change in the namespace
wakes the waiter at once, not at its fallback; a watch the server refuses leaves the waiter its fallback."""

from __future__ import annotations

import threading

from deploy.targets.kube import Resource
from deploy.targets.kube.client import KubeApi
from deploy.targets.kube.target import KubeTarget
from deploy.targets.kube.watch import Changes
from tests.controlplane import KubeCluster

CONFIGMAP = Resource("ConfigMap", "v1", "configmaps")
NOWHERE = Resource("Nothing", "example.invalid/v1", "nothings")  # the API server answers 404 to its watch


def woken_by(api: KubeApi, namespace: str, kinds: tuple[Resource, ...], change: threading.Thread) -> bool:
    """Whether the waiter, whose fallback is ten minutes, wakes within 60 s of `change`."""
    with Changes(api, namespace, kinds, fallback=600) as changes:
        changes.wait(5)  # the watches' first events (the objects already there), or five seconds
        done = threading.Event()
        waiter = threading.Thread(target=lambda: (changes.wait(), done.set()), daemon=True)
        waiter.start()
        change.start()
        return done.wait(60)


def test_a_change_wakes_the_waiter(target: KubeTarget, kube: KubeCluster) -> None:
    target.applier.ensure_namespace()
    config = {"metadata": {"name": "woken"}, "data": {"a": "1"}}
    change = threading.Thread(target=lambda: kube.create("configmaps", config))
    assert woken_by(target.api, kube.namespace, (CONFIGMAP,), change)


def test_a_watch_the_server_refuses_leaves_the_fallback(target: KubeTarget, kube: KubeCluster) -> None:
    with Changes(target.api, kube.namespace, (NOWHERE,), fallback=0.2) as changes:
        changes.wait()  # returns after the fallback: no event, no error
        assert not changes.changed.is_set()
