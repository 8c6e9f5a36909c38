"""The cloud controller's service loop for the real node (tools/cluster/node.py): a Service of type LoadBalancer
gets an address of the node's /24 (10.201.N.100 and up), held by the node's eth0, and that address in
`status.loadBalancer.ingress`, which is what kube-proxy routes to the Service (its KUBE-SERVICES chain matches the
ingress IPs: pkg/proxy/iptables/proxier.go); the host reaches it through the node's veth pair. A Service that
is gone, or no longer of that type, gives its address back. As the cloud-provider's service controller does
(k8s.io/cloud-provider controllers/service/controller.go), the address goes into the status subresource only;
unlike it, no finalizer is set: nothing outside the cluster is left to clean up.

    python tools/cluster/loadbalancers.py --server URL --pki DIR --netns NAME --first 10.201.N.100 --last 10.201.N.199
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import subprocess
import sys
import time
from pathlib import Path

import requests


def held(netns: str) -> set[str]:
    shown = subprocess.run(
        ["ip", "-n", netns, "-o", "-4", "addr", "show", "dev", "eth0"], capture_output=True, text=True, check=True
    )
    return {word.split("/")[0] for line in shown.stdout.splitlines() for word in line.split() if word.endswith("/32")}


def reconcile(api: requests.Session, server: str, netns: str, pool: list[str]) -> None:
    listed = api.get(f"{server}/api/v1/services", timeout=10)
    listed.raise_for_status()
    wanted: dict[tuple[str, str], str] = {}
    for service in listed.json()["items"]:
        if service["spec"].get("type") != "LoadBalancer":
            continue
        meta = service["metadata"]
        ingress = ((service.get("status") or {}).get("loadBalancer") or {}).get("ingress") or []
        address = ingress[0].get("ip") if ingress else None
        if address not in pool or address in wanted.values():
            address = next(a for a in pool if a not in wanted.values())
            answer = api.patch(
                f"{server}/api/v1/namespaces/{meta['namespace']}/services/{meta['name']}/status",
                data=json.dumps({"status": {"loadBalancer": {"ingress": [{"ip": address, "ipMode": "VIP"}]}}}),
                headers={"Content-Type": "application/merge-patch+json"},
                timeout=10,
            )
            answer.raise_for_status()
        wanted[(meta["namespace"], meta["name"])] = address
    have = held(netns)
    for address in set(wanted.values()) - have:
        subprocess.run(["ip", "-n", netns, "addr", "add", f"{address}/32", "dev", "eth0"], check=True)
    for address in have - set(wanted.values()):
        subprocess.run(["ip", "-n", netns, "addr", "del", f"{address}/32", "dev", "eth0"], check=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="loadbalancers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", required=True)
    parser.add_argument("--pki", type=Path, required=True, help="the control plane's ca.crt, admin.crt, admin.key")
    parser.add_argument("--netns", required=True)
    parser.add_argument("--first", required=True)
    parser.add_argument("--last", required=True)
    parser.add_argument("--interval", type=float, default=0.5)
    args = parser.parse_args(argv)
    first, last = ipaddress.IPv4Address(args.first), ipaddress.IPv4Address(args.last)
    pool = [str(ipaddress.IPv4Address(i)) for i in range(int(first), int(last) + 1)]
    api = requests.Session()
    api.trust_env = False
    api.verify = str(args.pki / "ca.crt")
    api.cert = (str(args.pki / "admin.crt"), str(args.pki / "admin.key"))
    while True:
        try:
            reconcile(api, args.server, args.netns, pool)
        except (requests.RequestException, OSError, StopIteration, subprocess.CalledProcessError) as exc:
            print(json.dumps({"error": str(exc)[:300]}), file=sys.stderr, flush=True)
        time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
