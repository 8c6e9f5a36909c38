"""The architecture diagrams: drawn from the layout model, and the copies in docs/architecture.md match them."""

from __future__ import annotations

import re

import pytest

from deploy.model.environments import LAYOUTS
from deploy.render.diagram import mermaid
from deploy.render.layout import build_layout
from tests.helpers import k8sdeploy
from tests.infra import ROOT

DIAGRAMS = ROOT / "docs" / "architecture.md"


def documented_block(layout: str) -> str:
    marker = f"<!-- k8sdeploy render --format mermaid --layout {layout} -->\n```mermaid\n"
    match = re.search(re.escape(marker) + r"(.*?)```", DIAGRAMS.read_text(), re.S)
    assert match, f"docs/architecture.md has no diagram for {layout} under {marker!r}"
    return match.group(1)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_the_architecture_page_shows_the_current_diagram(layout: str) -> None:
    result = k8sdeploy("render", "--format", "mermaid", "--layout", layout, env="local")
    assert result.exit_code == 0, result.output
    assert documented_block(layout) == result.stdout, (
        f"docs/architecture.md's {layout} diagram is out of date: "
        f"paste in `k8sdeploy render --format mermaid --layout {layout}`"
    )


def arrows(diagram: str) -> set[tuple[str, str, str]]:
    return set(re.findall(r'^\s+(\w+) -->\|"([^"]+)"\| (\w+)$', diagram, re.M))


def test_split_pods_draws_each_call_with_the_address_it_uses() -> None:
    drawn = arrows(mermaid(build_layout("split-pods", "mysql"), "LoadBalancer", 80))
    assert drawn == {
        ("client", "LoadBalancer Service nginx-lua:80", "nginx_lua"),
        ("nginx_lua", "frontend:8081", "frontend"),
        ("nginx_lua", "authentication:8082", "authentication"),
        ("nginx_lua", "session:8084", "session"),
        ("frontend", "person:8085", "person"),
        ("person", "authorisation:8083", "authorisation"),
        *((service, "mysql:3306", "mysql") for service in ("authentication", "authorisation", "session", "person")),
    }


def test_single_pod_draws_one_pod_and_localhost_calls() -> None:
    diagram = mermaid(build_layout("single-pod"), "NodePort", 8080)
    assert diagram.count("subgraph ") == 1
    assert {address for _, address, _ in arrows(diagram)} - {"NodePort Service nginx-lua:8080"} == {
        "127.0.0.1:8081",
        "127.0.0.1:8082",
        "127.0.0.1:8083",
        "127.0.0.1:8084",
        "127.0.0.1:8085",
    }
