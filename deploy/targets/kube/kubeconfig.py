"""The kubeconfig target's client: an existing cluster by kubeconfig context (kind, minikube, any provider).

The kubeconfig is read here (https://kubernetes.io/docs/concepts/configuration/organize-cluster-access-kubeconfig/):
the files of $KUBECONFIG merged (the first to set a name wins), the context's cluster (server, CA, tls-server-name,
insecure-skip-tls-verify) and user (token or tokenFile, client certificate and key, username and password). A user
whose credentials come from a plugin (`exec`, `auth-provider`) is loaded by the `kubernetes` library, which runs it."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from pathlib import Path

import yaml

from deploy.model.errors import ConfigError
from deploy.targets.kube.client import Endpoint, KubeApi, basic, bearer


class Unusable(Exception):
    """What is wrong with the kubeconfig, in a few words."""


def kubeconfig_api(context: str = "", path: Path | None = None) -> KubeApi:
    """A KubeApi for `context` (the current one when empty) of the kubeconfig at `path` (or $KUBECONFIG)."""
    files = [Path(path)] if path else kubeconfig_files()
    try:
        return KubeApi(endpoint_of(merged(files), context))
    except (Unusable, OSError, ValueError, yaml.YAMLError) as exc:
        where = f" in {path}" if path else " (KUBECONFIG or ~/.kube/config)"
        raise ConfigError(
            f"cannot use kubeconfig context {context or '(current)'}{where}: {exc}",
            "set context in [environments.NAME.kubeconfig] to one of `kubectl config get-contexts`",
        ) from None


def kubeconfig_files() -> list[Path]:
    listed = [Path(name).expanduser() for name in os.environ.get("KUBECONFIG", "").split(os.pathsep) if name]
    return listed or [Path("~/.kube/config").expanduser()]


def merged(files: list[Path]) -> dict:
    """The kubeconfig the files make together; each entry keeps the directory of its file (relative paths)."""
    config: dict = {"clusters": {}, "users": {}, "contexts": {}, "current-context": ""}
    found = [file for file in files if file.exists()]
    if not found:
        raise Unusable(f"no kubeconfig file at {', '.join(map(str, files))}")
    for file in found:
        document = yaml.safe_load(file.read_text()) or {}
        if not isinstance(document, dict):
            raise Unusable(f"{file} is not a kubeconfig")
        config["current-context"] = config["current-context"] or document.get("current-context") or ""
        for section in ("clusters", "users", "contexts"):
            for entry in document.get(section) or []:
                body = entry.get(section[:-1]) or {}
                config[section].setdefault(entry.get("name"), {**body, "_dir": file.parent, "_file": file})
    return config


def endpoint_of(config: dict, context: str) -> Endpoint:
    name = context or config["current-context"]
    if not name:
        raise Unusable("no context named and no current-context")
    chosen = config["contexts"].get(name)
    if chosen is None:
        raise Unusable(f"no context {name!r}")
    cluster, user = config["clusters"].get(chosen.get("cluster")), config["users"].get(chosen.get("user"), {})
    if cluster is None or not cluster.get("server"):
        raise Unusable(f"context {name!r} names no cluster with a server")
    if user.get("exec") or user.get("auth-provider"):
        return plugin_endpoint(user["_file"], name)
    return Endpoint(
        server=cluster["server"].rstrip("/"),
        ca_pem=pem(cluster, "certificate-authority"),
        insecure=bool(cluster.get("insecure-skip-tls-verify")),
        server_name=cluster.get("tls-server-name") or "",
        client_pem=pem(user, "client-certificate") + pem(user, "client-key") if has(user, "client-key") else b"",
        authorization=authorization(user),
    )


def has(entry: dict, key: str) -> bool:
    return bool(entry.get(key) or entry.get(f"{key}-data"))


def pem(entry: dict, key: str) -> bytes:
    """A key's PEM: inline (`KEY-data`, base64) or in the file `KEY` names (relative to its kubeconfig's folder)."""
    if entry.get(f"{key}-data"):
        return base64.b64decode(entry[f"{key}-data"]) + b"\n"
    if entry.get(key):
        return (entry["_dir"] / Path(entry[key]).expanduser()).read_bytes() + b"\n"
    return b""


def authorization(user: dict) -> Callable[[], str] | None:
    if user.get("token"):
        return bearer(user["token"])
    if user.get("tokenFile"):
        token_file = user["_dir"] / Path(user["tokenFile"]).expanduser()
        return lambda: f"Bearer {token_file.read_text().strip()}"  # read at each request: it may be rotated
    if user.get("username"):
        return basic(user["username"], user.get("password") or "")
    return None


def plugin_endpoint(file: Path, context: str) -> Endpoint:
    """A user whose credentials a plugin gives: the `kubernetes` library loads the context and runs the plugin,
    again whenever its token expires (its refresh hook, asked before each request)."""
    from kubernetes import config as kube_config
    from kubernetes.client import Configuration
    from kubernetes.config.config_exception import ConfigException

    configuration = Configuration()
    try:
        kube_config.load_kube_config(
            config_file=str(file), context=context, client_configuration=configuration, persist_config=False
        )
    except ConfigException as exc:
        raise Unusable(str(exc)) from None

    def header() -> str:  # the library's own (it runs the plugin's refresh hook first)
        return str(configuration.auth_settings().get("BearerToken", {}).get("value") or "")

    client = b""
    if configuration.cert_file and configuration.key_file:
        client = Path(configuration.cert_file).read_bytes() + b"\n" + Path(configuration.key_file).read_bytes()
    return Endpoint(
        server=configuration.host,
        ca_pem=Path(configuration.ssl_ca_cert).read_bytes() if configuration.ssl_ca_cert else b"",
        insecure=not configuration.verify_ssl,
        server_name=configuration.tls_server_name or "",
        client_pem=client,
        authorization=header,
    )
