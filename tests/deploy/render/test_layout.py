"""The layout model: where each part runs, and the address each call uses."""

from __future__ import annotations

import dataclasses

import pytest

from deploy.model.errors import ConfigError, RenderError
from deploy.render.layout import GATEWAY_PART, SERVICE_PARTS, Layout, Pod, build_layout


def test_single_pod_calls_go_to_localhost() -> None:
    layout = build_layout("single-pod")
    assert [pod.name for pod in layout.pods] == ["auth-suite"]
    assert layout.upstreams() == {
        "frontend": "127.0.0.1:8081",
        "authentication": "127.0.0.1:8082",
        "session": "127.0.0.1:8084",
    }
    assert layout.address("person", "authorisation") == "127.0.0.1:8083"
    assert layout.callers(layout.pods[0]) == ()  # nothing outside the pod calls into it


def test_split_pods_calls_go_to_the_callees_service() -> None:
    layout = build_layout("split-pods")
    assert [pod.name for pod in layout.pods] == [
        "nginx-lua",
        "frontend",
        "authentication",
        "authorisation",
        "session",
        "person",
    ]
    assert layout.upstreams() == {
        "frontend": "frontend:8081",
        "authentication": "authentication:8082",
        "session": "session:8084",
    }
    assert layout.address("frontend", "person") == "person:8085"
    callers = {
        pod.name: [(part.name, [p.name for p in pods]) for part, pods in layout.callers(pod)] for pod in layout.pods
    }
    assert callers["person"] == [("person", ["frontend"])] and callers["nginx-lua"] == []


def test_mysql_adds_the_server_and_each_services_call_to_it() -> None:
    layout = build_layout("split-pods", "mysql")
    assert layout.pods[-1].kind == "StatefulSet"
    assert ("person", "mysql") in layout.calls and ("frontend", "mysql") not in layout.calls
    assert layout.address("session", "mysql") == "mysql:3306"


def test_a_call_to_a_part_the_layout_lacks_is_a_render_error() -> None:
    parts = (GATEWAY_PART, *(p for p in SERVICE_PARTS if p.name != "authorisation"))
    with pytest.raises(RenderError, match="person calls authorisation, which the layout does not have"):
        Layout("split-pods", tuple(Pod(p.name, (p,)) for p in parts), storage="persistentVolumeClaim")


def test_a_gateway_route_to_a_missing_service_is_a_render_error() -> None:
    gateway = dataclasses.replace(GATEWAY_PART, calls=(*GATEWAY_PART.calls, "billing"))
    with pytest.raises(RenderError, match="nginx-lua calls billing"):
        Layout("single-pod", (Pod("auth-suite", (gateway, *SERVICE_PARTS)),), storage="emptyDir")


def test_unknown_layouts_and_impossible_combinations_are_refused() -> None:
    with pytest.raises(ConfigError, match="unknown layout 'nope'; choose one of: single-pod, split-pods"):
        build_layout("nope")
    with pytest.raises(ConfigError, match='single-pod keeps .* SQLite file, but database = "mysql"'):
        build_layout("single-pod", "mysql")
