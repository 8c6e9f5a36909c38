"""Render the gateway's nginx configuration from the upstream addresses of a layout."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from deploy.model.suite import GATEWAY_CALLS
from deploy.render.assets import asset_dir
from deploy.render.templating import strict_environment

NGINX_LUA_DIR = asset_dir("nginx-lua")
DEBIAN_MODULES = (
    "/usr/lib/nginx/modules/ndk_http_module.so",
    "/usr/lib/nginx/modules/ngx_http_lua_module.so",
)


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
    login_burst: int = 10
    worker_processes: int = 1
    error_log_level: str = "warn"
    # HTTPS: nginx's listen for it, the directory with tls.crt and tls.key, and the port clients reach it on
    # (the redirect's); with it, plain HTTP only answers the probes and redirects, and cookies are Secure
    tls_listen: str = ""
    tls_dir: str = ""
    https_port: int = 443

    def __post_init__(self) -> None:
        missing = sorted(set(GATEWAY_CALLS) - set(self.upstreams))
        if missing:
            raise ValueError(f"gateway upstreams lack {', '.join(missing)}; give an address for each")


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
        upstreams=upstreams,
        listen=config.listen,
        tls_listen=config.tls_listen,
        tls_dir=config.tls_dir,
        https_port=config.https_port,
    )
