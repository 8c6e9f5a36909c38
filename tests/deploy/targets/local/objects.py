"""Hand-written Kubernetes objects in the shapes our layouts use, for the local target: one pod of two busybox
httpd containers with a ConfigMap, a Secret, a claim and a Service."""

from __future__ import annotations

import base64

from tests.deploy.targets.local.conftest import ENV

LABELS = {
    "app.kubernetes.io/part-of": "test",
    "app.kubernetes.io/instance": ENV,
    "app.kubernetes.io/managed-by": "k8sdeploy",
}


def httpd(name: str, image: str, port: int, command: list[str] | None = None, **extra) -> dict:
    return {
        "name": name,
        "image": image,
        "command": command or ["httpd", "-f", "-p", f"127.0.0.1:{port}", "-h", "/www"],
        "ports": [{"name": "http", "containerPort": port}],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "http"}, "periodSeconds": 1},
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "readOnlyRootFilesystem": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
        },
        "resources": {"limits": {"memory": "64Mi", "cpu": "250m"}},
        **extra,
    }


def objects(image: str, ports: list[int], pod: str = "web", env_value: str = "one", **pod_extra) -> list[dict]:
    return [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "conf", "labels": LABELS},
            "data": {"greeting.txt": "hello from a ConfigMap\n", "MODE": "test"},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "creds", "labels": LABELS},
            "data": {"PASSWORD": base64.b64encode(b"s3cret").decode()},
        },
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "store", "labels": LABELS},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "frontdoor", "labels": LABELS},
            "spec": {"selector": {"app": pod}, "ports": [{"port": ports[0]}]},
        },
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": pod, "labels": {**LABELS, "app": pod}},
            "spec": {
                "securityContext": {"fsGroup": 10001},
                "volumes": [
                    {"name": "scratch", "emptyDir": {}},
                    {"name": "store", "persistentVolumeClaim": {"claimName": "store"}},
                    {"name": "conf", "configMap": {"name": "conf"}},
                ],
                "containers": [
                    httpd(
                        "first",
                        image,
                        ports[0],
                        env=[
                            {"name": "VALUE", "value": env_value},
                            {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "conf", "key": "MODE"}}},
                            {"name": "PASSWORD", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "PASSWORD"}}},
                        ],
                        volumeMounts=[
                            {"name": "scratch", "mountPath": "/tmp"},
                            {"name": "store", "mountPath": "/data"},
                            {"name": "conf", "mountPath": "/www/greeting.txt", "subPath": "greeting.txt"},
                        ],
                    ),
                    httpd("second", image, ports[1]),
                ],
                **pod_extra,
            },
        },
    ]
