"""Ports per environment: on the local target the gateway listens on the environment's gateway_port and the five
services on the five ports after it, in every place that names a port (containers, probes, the services' PORT and
peers' URLs, the gateway's listen and upstreams); in a cluster the pods keep the fixed ports."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from deploy.identity import Identity, new_key
from deploy.model.environments import Environment, load_environment
from deploy.model.errors import ConfigError
from deploy.model.suite import GATEWAY, SERVICES, suite_ports
from deploy.render.objects import render
from deploy.targets.local.plan import plan
from tests.deploy.inputs import VERSION, containers, fake_images, of_kind
from tests.helpers import k8sdeploy

BASE = 18230


def expected_ports(base: int) -> dict[str, int]:
    return {
        "nginx-lua": base,
        "frontend": base + 1,
        "authentication": base + 2,
        "authorisation": base + 3,
        "session": base + 4,
        "person": base + 5,
    }


def test_suite_ports_keep_each_services_offset_from_the_gateway() -> None:
    assert suite_ports() == expected_ports(8080)
    assert suite_ports(BASE) == expected_ports(BASE)
    assert list(suite_ports(BASE)) == [GATEWAY, *(s.name for s in SERVICES)]


@pytest.mark.parametrize("layout", ["single-pod", "split-pods"])
def test_a_local_environment_runs_every_part_on_its_own_ports(layout: str) -> None:
    environment = Environment(name="second", target="local", gateway_port=BASE)
    objects = render(environment, layout, fake_images(), VERSION).objects
    want = expected_ports(BASE)
    for container in containers(objects):
        port = want[container["name"]]
        assert [p["containerPort"] for p in container["ports"]] == [port]
        for probe in ("readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"]["port"] == port
        env = {e["name"]: e.get("value") for e in container.get("env", [])}
        if container["name"] != GATEWAY:
            assert env["PORT"] == str(port) and env["HOST"] == "127.0.0.1"
        for name, value in env.items():
            if name.endswith("_URL") and value:
                peer = name.removesuffix("_URL").lower()
                assert value.endswith(f":{want[peer]}"), (container["name"], name, value)
    conf = of_kind(objects, "ConfigMap")["nginx-lua-conf"]["data"]["nginx.conf"]
    assert f"listen 127.0.0.1:{BASE};" in conf
    servers = sorted(int(port) for port in re.findall(r"server [^:\s]+:(\d+);", conf))
    assert servers == sorted(want[name] for name in ("frontend", "authentication", "session"))
    # what the local target runs: every container's host ports, and the probes it sends
    keys = Identity(environment.name, (new_key(0),)).secrets(environment.namespace)  # what up applies beside
    planned = [c for pod in plan((*objects, *keys)).pods for c in pod.containers]
    assert {c.name: c.ports for c in planned} == {name: (port,) for name, port in want.items()}
    assert all(c.readiness is not None and c.readiness.port == want[c.name] for c in planned)


def test_in_a_cluster_the_pods_keep_the_fixed_ports_and_gateway_port_is_the_services() -> None:
    environment = Environment(name="staging", target="kubeconfig", layout="split-pods", gateway_port=BASE)
    objects = render(environment, "split-pods", fake_images(), VERSION).objects
    assert {c["name"]: c["ports"][0]["containerPort"] for c in containers(objects)} == expected_ports(8080)
    service = of_kind(objects, "Service")[GATEWAY]["spec"]["ports"][0]
    assert (service["port"], service["targetPort"]) == (BASE, 8080)


def test_a_local_gateway_port_leaves_room_for_the_five_services(tmp_path: Path) -> None:
    config = tmp_path / "k8sdeploy.toml"
    config.write_text("[environments.high]\nlocal = {}\ngateway_port = 65531\n")
    result = k8sdeploy("render", env="high", config=config)
    assert result.exit_code == 2, result.stderr
    assert "gateway_port 65531: on the local target the five services listen on the five ports after it" in (
        result.stderr
    )
    with pytest.raises(ConfigError):
        load_environment("high", config)
    Environment(name="edge", target="local", gateway_port=65530)  # the last block that fits
