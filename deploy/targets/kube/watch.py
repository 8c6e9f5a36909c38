"""Waits driven by the API server's watches: a waiter checks its condition again as soon as anything it depends on
changes, instead of on a fixed poll.

One watch per kind (`GET ...?watch=1`, https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes),
each in a thread of its own, wakes the waiter on any event it streams; the events are not parsed (the waiter reads
what it needs anew), so an ERROR event (410 Gone) or the stream's end is one more wake-up, and the watch is opened
again. Whatever the watches do (refused, cut, not allowed by RBAC), the waiter checks again at least every
`fallback` seconds: a watch makes a wait prompt, never makes it wrong. A watch is not cut when its wait ends
(closing a TLS connection that another thread reads corrupts it): the API server ends it within WATCH_SECONDS,
and its thread, a daemon, with it."""

from __future__ import annotations

import threading

from deploy.targets.kube import Resource
from deploy.targets.kube.client import KubeApi

WATCH_SECONDS = 10  # the API server ends each watch after this; it is opened again while its wait lasts


class Changes:
    """Wakes one waiter when an object of `kinds` in `namespace` (matching `labels`, `fields`) changes."""

    def __init__(
        self,
        api: KubeApi,
        namespace: str,
        kinds: tuple[Resource, ...],
        labels: str = "",
        fields: str = "",
        fallback: float = 1.0,
    ):
        self.api, self.namespace, self.kinds = api, namespace, kinds
        self.labels, self.fields, self.fallback = labels, fields, fallback
        self.changed = threading.Event()
        self.stopped = threading.Event()

    def wait(self, seconds: float | None = None) -> None:
        """Until something changed since the last wait, or `seconds` (at most `fallback`) passed."""
        limit = self.fallback if seconds is None else max(0.0, min(seconds, self.fallback))
        self.changed.wait(limit)
        self.changed.clear()

    def follow(self, kind: Resource) -> None:
        while not self.stopped.is_set():
            query = {"watch": "1", "labelSelector": self.labels, "fieldSelector": self.fields}
            query["timeoutSeconds"] = str(WATCH_SECONDS)
            try:
                answer = self.api.stream(kind.path(self.namespace if kind.namespaced else ""), query, WATCH_SECONDS + 5)
            except Exception:  # noqa: BLE001 - a watch that cannot be opened leaves the waiter its fallback
                self.stopped.wait(self.fallback)
                continue
            try:
                if answer.status != 200:
                    self.stopped.wait(self.fallback)
                    continue
                for _ in answer.stream(4096):
                    if self.stopped.is_set():
                        break
                    self.changed.set()
            except Exception:  # noqa: BLE001 - cut: opened again (or not: its wait is over)
                pass
            finally:
                answer.close()  # not back to the pool: a watch left half read

    def __enter__(self) -> Changes:
        for kind in self.kinds:
            threading.Thread(target=self.follow, args=(kind,), name=f"watch-{kind.plural}", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
