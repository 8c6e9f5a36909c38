"""Hand-written Kubernetes objects in the shapes the render stage produces (single-pod and split-pods)."""

from __future__ import annotations

import copy

from deploy.model.suite import GATEWAY, SERVICES

VERSION = "1.4.0"
DIGEST = "sha256:" + "ab" * 32


# what Pod Security's `restricted` profile asks of a pod and of each container, which the namespaces k8sdeploy
# creates enforce
RESTRICTED = {"runAsNonRoot": True, "runAsUser": 10001, "seccompProfile": {"type": "RuntimeDefault"}}
RESTRICTED_CONTAINER = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def labels(instance: str, name: str) -> dict[str, str]:
    return {
        "app.kubernetes.io/part-of": "auth-suite",
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/instance": instance,
        "app.kubernetes.io/version": VERSION,
        "app.kubernetes.io/managed-by": "k8sdeploy",
    }


def image(name: str) -> str:
    return f"europe-west1-docker.pkg.dev/my-project/auth-suite/{name}:{VERSION}@{DIGEST}"


def container(name: str, port: int) -> dict:
    return {
        "name": name,
        "image": image(name),
        "ports": [{"containerPort": port}],
        "readinessProbe": {"httpGet": {"path": "/health", "port": port}},
        "securityContext": copy.deepcopy(RESTRICTED_CONTAINER),
    }


def gateway_service(instance: str, service_type: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "gateway", "labels": labels(instance, GATEWAY)},
        "spec": {
            "type": service_type,
            "selector": {"app.kubernetes.io/name": GATEWAY},
            "ports": [{"name": "http", "port": 8080, "targetPort": 8080}],
        },
    }


def deployment(instance: str, name: str, containers: list[dict], pod_name: str | None = None) -> dict:
    pod_labels = {**labels(instance, pod_name or name)}
    selector = {"app.kubernetes.io/name": pod_name or name, "app.kubernetes.io/instance": instance}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "labels": labels(instance, name)},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {"containers": containers, "securityContext": copy.deepcopy(RESTRICTED)},
            },
        },
    }


def single_pod(instance: str, service_type: str = "LoadBalancer") -> list[dict]:
    """One pod of six containers, its gateway configuration, and the Service in front of it."""
    containers = [container(GATEWAY, 8080)] + [container(s.name, s.port) for s in SERVICES]
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "gateway-conf", "labels": labels(instance, GATEWAY)},
        "data": {"nginx.conf": "events {}\n"},
    }
    return [gateway_service(instance, service_type), deployment(instance, "auth-suite", containers, GATEWAY), config]


def split_pods(instance: str, service_type: str = "LoadBalancer") -> list[dict]:
    """A Deployment and a ClusterIP Service per service, a StatefulSet with a claim, a Secret, a NetworkPolicy."""
    objects = [gateway_service(instance, service_type), deployment(instance, GATEWAY, [container(GATEWAY, 8080)])]
    for service in SERVICES:
        if service.name == "person":
            continue
        objects.append(deployment(instance, service.name, [container(service.name, service.port)]))
        objects.append(
            {
                "apiVersion": "v1",
                "kind": "Service",
                "metadata": {"name": service.name, "labels": labels(instance, service.name)},
                "spec": {
                    "selector": {"app.kubernetes.io/name": service.name},
                    "ports": [{"port": service.port, "targetPort": service.port}],
                },
            }
        )
    person = deployment(instance, "person", [container("person", 8085)])
    person["kind"], person["apiVersion"] = "StatefulSet", "apps/v1"
    person["spec"]["serviceName"] = "person"
    objects += [
        person,
        {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": {"name": "person-data", "labels": labels(instance, "person")},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "database", "labels": labels(instance, "person")},
            "type": "Opaque",
            "data": {"password": "c2VjcmV0"},
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "NetworkPolicy",
            "metadata": {"name": "default-deny", "labels": labels(instance, "auth-suite")},
            "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
        },
    ]
    return objects
