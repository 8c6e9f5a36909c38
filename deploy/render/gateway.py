"""Render the gateway's nginx configuration from the upstream addresses of a layout."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from deploy.model.suite import DRAIN_SECONDS, GATEWAY_CALLS, IDENTITY_DIR, IDENTITY_FILE, SERVICE_MEMORY_LIMIT
from deploy.render.assets import asset_dir
from deploy.render.templating import strict_environment
from suitekit.passwords import login_burst, parse_memory

NGINX_LUA_DIR = asset_dir("nginx-lua")
DEBIAN_MODULES = (
    "/usr/lib/nginx/modules/ndk_http_module.so",
    "/usr/lib/nginx/modules/ngx_http_lua_module.so",
)


def default_login_burst(memory_limit: str = SERVICE_MEMORY_LIMIT) -> int:
    """The per-client login burst that one authentication process with `memory_limit` hashes at once, so a single
    client's burst never waits for a hash slot and never gets 503 (suitekit/passwords.py sizes the slots)."""
    return login_burst(parse_memory(memory_limit))


@dataclass(frozen=True)
class GatewayConfig:
    """What differs between deployments of the gateway; everything else is in nginx.conf.j2."""

    upstreams: Mapping[str, str]  # service name -> host:port
    listen: str = "8080"
    runtime_dir: str = "/tmp/nginx"
    lua_dir: str = str(NGINX_LUA_DIR / "lua")
    modules: tuple[str, ...] = DEBIAN_MODULES
    secure_cookies: bool = False
    login_rate: str = "20r/m"
    login_burst: int = field(default_factory=default_login_burst)
    worker_processes: int = 1
    error_log_level: str = "warn"
    # HTTPS: nginx's listen for it, the directory with tls.crt and tls.key, and the port clients reach it on
    # (the redirect's); with it, plain HTTP only answers the probes and redirects, and cookies are Secure
    tls_listen: str = ""
    tls_dir: str = ""
    https_port: int = 443
    # the key file of the gateway's internal tokens (deploy/identity.py)
    identity_keys: str = f"{IDENTITY_DIR}/{IDENTITY_FILE}"
    # the Host names served; () serves any IP address literal and localhost (never a DNS name a rebinding page
    # could point at it); any other Host is closed without an answer
    hosts: tuple[str, ...] = ()
    # the load balancers (CIDRs) whose X-Forwarded-For names the client; nobody else's is believed
    trusted_proxies: tuple[str, ...] = ()
    # `user` of nginx's workers, for a master started as root outside a container (`make run`, the tests)
    worker_user: str = ""

    def __post_init__(self) -> None:
        missing = sorted(set(GATEWAY_CALLS) - set(self.upstreams))
        if missing:
            raise ValueError(f"gateway upstreams lack {', '.join(missing)}; give an address for each")


def retry_after(rate: str) -> int:
    """Whole seconds until nginx's limit_req at `rate` ("20r/m", "5r/s") lets one more request through."""
    found = re.fullmatch(r"(\d+)r/([sm])", rate)
    if found is None:
        raise ValueError(f"login_rate {rate!r} is not nginx's NUMBERr/s or NUMBERr/m")
    return max(1, math.ceil((60 if found[2] == "m" else 1) / int(found[1])))


def render_nginx_conf(config: GatewayConfig, template_dir: Path = NGINX_LUA_DIR) -> str:
    """nginx.conf for `config`; `template_dir` is the nginx-lua/ of the source tree (the build reads a checkout)."""
    template = strict_environment(template_dir).get_template("nginx.conf.j2")
    upstreams = {name: config.upstreams[name] for name in GATEWAY_CALLS}
    return template.render(
        modules=config.modules,
        worker_processes=config.worker_processes,
        runtime_dir=config.runtime_dir,
        error_log_level=config.error_log_level,
        lua_dir=config.lua_dir,
        secure_cookies=config.secure_cookies,
        login_rate=config.login_rate,
        login_burst=config.login_burst,
        login_retry_after=retry_after(config.login_rate),
        upstreams=upstreams,
        listen=config.listen,
        tls_listen=config.tls_listen,
        tls_dir=config.tls_dir,
        https_port=config.https_port,
        identity_keys=config.identity_keys,
        hosts=tuple(host.lower() for host in config.hosts),
        trusted_proxies=config.trusted_proxies,
        worker_user=config.worker_user,
        drain_seconds=DRAIN_SECONDS,
    )
