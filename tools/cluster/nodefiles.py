"""What the real node (tools/cluster/node.py) starts from: the configuration files of containerd, the bridge CNI
plugin, the kubelet, kube-proxy and CoreDNS (settings and why: ../shared/notes/real-node.md), and the two images
its containerd has before any pull."""

from __future__ import annotations

import hashlib
import json
import tarfile
from io import BytesIO
from pathlib import Path

from deploy.targets.local.pause import BUSYBOX, is_static_executable, root_fs

NODE_NAME = "k8sdeploy-node"
POD_CIDR = "10.244.0.0/24"
PAUSE_IMAGE = "k8sdeploy.local/pause:3.10"  # imported into the node's containerd (its sandbox image)
HELPER_IMAGE = "k8sdeploy.local/busybox:1"  # likewise: local-path-provisioner's helper pods run it
CNI_BIN = Path("/usr/lib/cni")


class NodeError(Exception):
    """A part of the node did not start; the message names it and the log to read."""


def image_archive(tag: str, layer: bytes, config: dict) -> bytes:
    """A docker-archive (what `ctr images import` reads) of the one-layer image `layer` (a tar), with `config` as
    its runtime configuration."""
    image = {
        "architecture": "amd64",
        "os": "linux",
        "config": config,
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]},
    }
    config_bytes = json.dumps(image).encode()
    config_name = hashlib.sha256(config_bytes).hexdigest() + ".json"
    manifest = json.dumps([{"Config": config_name, "RepoTags": [tag], "Layers": ["layer.tar"]}]).encode()
    archive = BytesIO()
    with tarfile.open(fileobj=archive, mode="w") as tar:
        for name, data in (("layer.tar", layer), (config_name, config_bytes), ("manifest.json", manifest)):
            entry = tarfile.TarInfo(name)
            entry.size = len(data)
            tar.addfile(entry, BytesIO(data))
    return archive.getvalue()


def node_images(bin_dir: Path) -> dict[str, bytes]:
    """The images the node has before any pull: the pod sandbox's (the pause program) and the volume
    provisioner's helper: the local target's busybox root file system (deploy/targets/local/pause.py) with the
    sh, mkdir and rm of local-path-provisioner's set-up and tear-down scripts."""
    if not BUSYBOX.is_file() or not is_static_executable(BUSYBOX):
        raise NodeError(f"no static busybox at {BUSYBOX}: apt-get install busybox-static")
    pause = BytesIO()
    with tarfile.open(fileobj=pause, mode="w") as tar:
        info = tarfile.TarInfo("pause")
        program = (bin_dir / "pause").read_bytes()
        info.size, info.mode = len(program), 0o755
        tar.addfile(info, BytesIO(program))
    helper = root_fs(BUSYBOX, applets=("sh", "mkdir", "rm", "chmod", "ls"))
    return {
        PAUSE_IMAGE: image_archive(PAUSE_IMAGE, pause.getvalue(), {"Entrypoint": ["/pause"], "User": "65535:65535"}),
        HELPER_IMAGE: image_archive(HELPER_IMAGE, helper, {"Cmd": ["/bin/sh"]}),
    }


def containerd_config(d: Path, sockets: Path) -> str:
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    return f"""version = 2
root = "{d / "containerd-root"}"
state = "{sockets / "containerd"}"

[grpc]
  address = "{sockets / "containerd.sock"}"

[{cri}]
  sandbox_image = "{PAUSE_IMAGE}"
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [{cri}.containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [{cri}.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [{cri}.containerd.runtimes.runc.options]
        Root = "{d / "runc"}"
        SystemdCgroup = false
  [{cri}.cni]
    bin_dir = "{CNI_BIN}"
    conf_dir = "{d / "cni"}"
  [{cri}.registry]
    config_path = "{d / "certs.d"}"
"""


def cni_config(d: Path) -> dict:
    return {
        "cniVersion": "0.4.0",
        "name": "k8sdeploy",
        "plugins": [
            {
                "type": "bridge",
                "bridge": "cni0",
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "dataDir": str(d / "cni-ipam"),
                    "ranges": [[{"subnet": POD_CIDR}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            }
        ],
    }


def kubelet_config(d: Path, sockets: Path, node_ip: str, cgroup: str) -> dict:
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(d.parent / "pki/ca.crt")},
        },
        "authorization": {"mode": "Webhook"},
        "address": node_ip,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f"/{cgroup}",
        "failCgroupV1": False,  # this machine's hierarchy is v1; kubelet 1.35 refuses it by default
        "failSwapOn": False,
        "makeIPTablesUtilChains": False,
        "containerRuntimeEndpoint": f"unix://{sockets / 'containerd.sock'}",
        "podLogsDir": str(d / "pod-logs"),
        "volumePluginDir": str(d / "volume-plugins"),
        "clusterDNS": [node_ip],
        "clusterDomain": "cluster.local",
        "resolvConf": "",
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "nodefs.inodesFree": "1%",
            "imagefs.available": "1%",
            "imagefs.inodesFree": "1%",
        },
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "serializeImagePulls": False,
        "rotateCertificates": False,
        "maxPods": 110,
    }


def kube_proxy_config(d: Path, node_ip: str) -> dict:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(d.parent / "kube-proxy.kubeconfig")},
        "mode": "iptables",
        "iptables": {"masqueradeAll": True},  # no br_netfilter: replies on the bridge come back through the NAT
        "clusterCIDR": POD_CIDR,
        "hostnameOverride": NODE_NAME,
        "bindAddress": node_ip,
        "metricsBindAddress": "127.0.0.1:10249",
        "healthzBindAddress": "127.0.0.1:10256",
        # 0: leave nf_conntrack_max and the TCP timeouts alone (nf_conntrack_max is the host's, not the namespace's)
        "conntrack": {"maxPerCore": 0, "min": 0, "tcpEstablishedTimeout": "0s", "tcpCloseWaitTimeout": "0s"},
    }


def corefile(d: Path, node_ip: str) -> str:
    return f""".:53 {{
    bind {node_ip}
    errors
    kubernetes cluster.local in-addr.arpa ip6.arpa {{
        kubeconfig {d.parent / "coredns.kubeconfig"}
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }}
    cache 30
}}
"""
