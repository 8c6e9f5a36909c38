"""Run the whole suite on loopback, without containers: five service processes and nginx in front.

`make run` uses it in the foreground; the tests use `LocalSuite` to start the same thing.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import click
import httpx
from sqlalchemy.engine import make_url

from deploy.identity import PARTS, Identity, new_key
from deploy.model.suite import (
    DEMO_USERS,
    GATEWAY,
    GATEWAY_PORT,
    HASHING,
    SEEDED_BY,
    SERVICE_MEMORY_LIMIT,
    SERVICES,
    Service,
    suite_ports,
    url_variable,
)
from deploy.render.gateway import GatewayConfig, default_login_burst, render_nginx_conf
from deploy.users import private_write

ROOT = Path(__file__).resolve().parent.parent


class SuiteError(Exception):
    """A part of the suite did not start; the message names it and shows its last log lines."""


@dataclass(frozen=True)
class SuiteSettings:
    work_dir: Path
    base_port: int = GATEWAY_PORT
    host: str = "127.0.0.1"
    mysql_url: str = ""  # server URL without a database: one database per service is created there
    database_prefix: str = "auth_"
    login_rate: str = "20r/m"
    login_burst: int = field(default_factory=default_login_burst)
    extra_env: dict[str, str] = field(default_factory=dict)
    nginx: str = "nginx"

    def port(self, service: Service) -> int:
        return suite_ports(self.base_port)[service.name]

    def address(self, name: str) -> str:
        return f"{self.host}:{suite_ports(self.base_port)[name]}"


def tail(path: Path, lines: int = 20) -> str:
    try:
        with path.open(errors="replace") as handle:
            return "".join(deque(handle, maxlen=lines))
    except FileNotFoundError:
        return "(no log written)"


def ensure_mysql_databases(settings: SuiteSettings) -> None:
    import pymysql

    url = make_url(settings.mysql_url)
    connection = pymysql.connect(
        host=url.host or "127.0.0.1", port=url.port or 3306, user=url.username, password=url.password or ""
    )
    try:
        with connection.cursor() as cursor:
            for service in SERVICES:
                if service.database:
                    cursor.execute(f"CREATE DATABASE IF NOT EXISTS `{settings.database_prefix}{service.name}`")
    finally:
        connection.close()


def nginx_command(config: GatewayConfig, nginx: str = "nginx") -> list[str]:
    """Write the rendered nginx.conf into the config's runtime dir; the command that runs it."""
    runtime = Path(config.runtime_dir)
    runtime.mkdir(parents=True, exist_ok=True)
    (runtime / "nginx.conf").write_text(render_nginx_conf(config))
    return [shutil.which(nginx) or nginx, "-p", str(runtime), "-e", "stderr", "-c", str(runtime / "nginx.conf")]


class LocalSuite:
    """Start the services and the gateway as child processes; `stop()` ends them all."""

    def __init__(self, settings: SuiteSettings):
        self.settings = settings
        self.processes: dict[str, subprocess.Popen] = {}
        self.logs = settings.work_dir / "logs"
        self.identity = Identity("run", (new_key(int(time.time())),))

    def key_file(self, part: str) -> Path:
        return self.settings.work_dir / "identity" / part

    def write_keys(self, identity: Identity) -> None:
        """Each part's key file (deploy/identity.py), read again by the running parts within a second."""
        self.identity = identity
        for part in PARTS:
            private_write(self.key_file(part), identity.key_file(part))

    @property
    def url(self) -> str:
        return f"http://{self.settings.address(GATEWAY)}"

    def service_env(self, service: Service) -> dict[str, str]:
        settings = self.settings
        env = {
            **os.environ,
            "HOST": settings.host,
            "PORT": str(settings.port(service)),
            "PYTHONPATH": str(ROOT),
            "PYTHONUNBUFFERED": "1",
            "IDENTITY_KEYS": str(self.key_file(service.name)),
        }
        if service.database:
            if settings.mysql_url:
                env["DATABASE_URL"] = f"{settings.mysql_url.rstrip('/')}/{settings.database_prefix}{service.name}"
            else:
                env["DATABASE_PATH"] = str(settings.work_dir / "data" / f"{service.name}.db")
        for peer in service.calls:
            env[url_variable(peer)] = f"http://{settings.address(peer)}"
        if service.name == HASHING:  # hashes as many at once as in its container
            env["MEMORY_LIMIT"] = SERVICE_MEMORY_LIMIT
        if service.name in SEEDED_BY:  # the suite from source: the demo users, as a demo environment has them
            env["SEED_USERS"] = json.dumps([login.user().seed() for login in DEMO_USERS])
        env.update(settings.extra_env)
        return env

    def start_process(self, name: str, command: list[str], env: dict[str, str] | None = None) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        log = (self.logs / f"{name}.log").open("ab")
        self.processes[name] = subprocess.Popen(
            command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=ROOT
        )
        log.close()

    def start(self, timeout: float = 120) -> LocalSuite:
        if self.settings.mysql_url:
            ensure_mysql_databases(self.settings)
        self.write_keys(self.identity)
        try:
            for service in SERVICES:
                self.start_process(service.name, [sys.executable, "-m", service.module], self.service_env(service))
            for service in SERVICES:
                self.wait_ready(service.name, f"http://{self.settings.address(service.name)}/readyz", timeout)
            self.start_gateway()
            self.wait_ready(GATEWAY, f"{self.url}/login", timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def gateway_config(self, **overrides) -> GatewayConfig:
        """The gateway for this suite's services; `overrides` change listen address, limits, ..."""
        settings = self.settings
        values = {
            "upstreams": {s.name: settings.address(s.name) for s in SERVICES},
            "listen": settings.address(GATEWAY),
            "runtime_dir": str(settings.work_dir / "nginx"),
            "login_rate": settings.login_rate,
            "login_burst": settings.login_burst,
            "identity_keys": str(self.key_file(GATEWAY)),
            # nginx started by root would run its workers as `nobody`, who cannot read the 0600 key file: they run
            # as whoever runs the suite, as the services do (in a container, nginx runs as the image's user)
            "worker_user": pwd.getpwuid(os.geteuid()).pw_name if os.geteuid() == 0 else "",
            **overrides,
        }
        return GatewayConfig(**values)

    def start_gateway(self) -> None:
        self.start_process(GATEWAY, nginx_command(self.gateway_config(), self.settings.nginx))

    def wait_ready(self, name: str, url: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            process = self.processes[name]
            if process.poll() is not None:
                raise SuiteError(
                    f"{name} exited with code {process.returncode}; last log lines:\n{tail(self.logs / f'{name}.log')}"
                )
            try:
                answer = httpx.get(url, timeout=2)
                if answer.status_code == 200:
                    return
                last = f"{answer.status_code} {answer.text[:200]}"
            except httpx.HTTPError as exc:
                last = str(exc) or type(exc).__name__
            time.sleep(0.2)
        raise SuiteError(
            f"{name} not ready after {timeout:.0f}s at {url} ({last}); last log lines:\n"
            f"{tail(self.logs / f'{name}.log')}"
        )

    def stop(self) -> None:
        for name, process in reversed(list(self.processes.items())):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM if name != GATEWAY else signal.SIGQUIT)
        for process in self.processes.values():
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes.clear()

    def __enter__(self) -> LocalSuite:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()


@click.command()
@click.option(
    "--port",
    "base_port",
    default=GATEWAY_PORT,
    show_default=True,
    help="Gateway port; the services take the next five.",
)
@click.option(
    "--work-dir",
    type=click.Path(path_type=Path),
    default=ROOT / ".run",
    show_default=True,
    help="Where databases, logs and the rendered nginx.conf go.",
)
@click.option(
    "--mysql-url",
    default="",
    envvar="SUITE_MYSQL_URL",
    help="Use this MySQL/MariaDB server (one database per service) instead of SQLite.",
)
def main(base_port: int, work_dir: Path, mysql_url: str) -> None:
    """Run the auth suite on loopback in the foreground until Ctrl-C or SIGTERM."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    suite = LocalSuite(SuiteSettings(work_dir=work_dir.resolve(), base_port=base_port, mysql_url=mysql_url))
    click.echo("starting the services and the gateway ...", err=True)
    try:
        suite.start()
    except SuiteError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    try:
        click.echo(f"suite running at {suite.url}")
        for user in DEMO_USERS:
            click.echo(f"  log in as {user.email} / {user.password}")
        click.echo(f"logs in {suite.logs}; Ctrl-C stops everything", err=True)
        while all(p.poll() is None for p in suite.processes.values()):
            time.sleep(0.5)
        dead = [name for name, p in suite.processes.items() if p.poll() is not None]
        click.echo(
            f"error: {', '.join(dead)} stopped; last log lines:\n{tail(suite.logs / f'{dead[0]}.log')}", err=True
        )
        sys.exit(1)
    except KeyboardInterrupt:
        pass
    finally:
        click.echo("stopping ...", err=True)
        suite.stop()


if __name__ == "__main__":
    main()
