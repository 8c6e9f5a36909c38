"""Draw a layout as a Mermaid flowchart: its pods and containers, the Services, and who calls whom."""

from __future__ import annotations

from deploy.model.suite import GATEWAY
from deploy.render.layout import Layout


def node(name: str) -> str:
    """A Mermaid id for a part or pod name (Mermaid reads `-` in an id as part of an arrow)."""
    return name.replace("-", "_")


def storage_nodes(layout: Layout) -> list[str]:
    """Where data lives: each service's SQLite file, or the database server's volume."""
    lines = []
    for part in layout.parts:
        if layout.keeps_sqlite(part):
            where = "emptyDir" if layout.storage == "emptyDir" else f"PersistentVolumeClaim {part.name}-data"
            lines += [
                f'    {node(part.name)}_data[("{part.name}.db on {where}")]',
                f"    {node(part.name)} --- {node(part.name)}_data",
            ]
    for pod in layout.pods:
        for claim in pod.claim_templates:
            lines += [
                f'    {node(claim.name)}[("PersistentVolumeClaim {claim.name}")]',
                f"    {node(claim.owner)} --- {node(claim.name)}",
            ]
    return lines


def mermaid(layout: Layout, service_type: str, gateway_port: int) -> str:
    """The flowchart; each call's arrow is labelled with the address the caller uses."""
    lines = ["flowchart LR", '    client(["browser"])']
    for pod in layout.pods:
        lines.append(f'    subgraph pod_{node(pod.name)}["{pod.kind} {pod.name}"]')
        lines += [f'        {node(part.name)}["{part.name} :{part.port}"]' for part in pod.parts]
        lines.append("    end")
    lines.append(f'    client -->|"{service_type} Service {GATEWAY}:{gateway_port}"| {node(GATEWAY)}')
    for caller, callee in layout.calls:
        lines.append(f'    {node(caller)} -->|"{layout.address(caller, callee)}"| {node(callee)}')
    return "\n".join(lines + storage_nodes(layout)) + "\n"
