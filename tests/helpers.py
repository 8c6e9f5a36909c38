"""Small helpers the tests share: the `k8sdeploy` command line run in-process and the JSON documents it prints,
and HTTP helpers for talking to the suite through its gateway as a browser would."""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import httpx
import jsonschema
from click.testing import CliRunner, Result

from cli import main
from deploy.output import SCHEMA_PATH

SCHEMA = json.loads(SCHEMA_PATH.read_text())


def k8sdeploy(
    *args: str,
    env: str | None = None,
    config: Path | str | None = None,
    environ: dict[str, str] | None = None,
    stdin: str | None = None,
    catch_exceptions: bool = True,
) -> Result:
    """`k8sdeploy ARGS [--env ENV] [--config CONFIG]` run in this process by click's CliRunner, with `environ`
    added to the environment and `stdin` as its standard input; the result keeps stdout and stderr apart."""
    options = [*(["--env", env] if env is not None else []), *(["--config", str(config)] if config is not None else [])]
    result = CliRunner().invoke(main, [*args, *options], env=environ, input=stdin, catch_exceptions=catch_exceptions)
    checked_stderr(result.stderr, [*args, *options])
    assert result.exception is None or isinstance(result.exception, SystemExit), (
        f"k8sdeploy {' '.join(args)} let {result.exception!r} escape"
    )
    return result


# Every CLI run's stderr in this test session, appended here (the acceptance's `grep -rn Traceback`).
CLI_LOG = Path(os.environ.get("K8SDEPLOY_CLI_LOG") or Path(tempfile.gettempdir()) / f"k8sdeploy-cli-{os.getpid()}.log")
CLI = [sys.executable, "-m", "cli"]  # k8sdeploy in a process of its own, from the checkout (cwd ROOT)


def checked_stderr(stderr: str, args: Sequence[str]) -> str:
    """The stderr of one `k8sdeploy` run, in process or not: kept in CLI_LOG, and never a traceback (an
    unexpected error is one line, exit 70, its traceback in a crash log)."""
    with CLI_LOG.open("a") as log:
        log.write(f"$ k8sdeploy {' '.join(map(str, args))}\n{stderr}\n")
    # Python prints its own traceback from the first column; a service's, quoted in a diagnosis (indented) or in
    # `dev`'s log stream (behind the service's name), is what the user needs to see, not a crash of k8sdeploy.
    own = re.search(r"(?m)^Traceback \(most recent call last\):", stderr)
    assert own is None, f"k8sdeploy {' '.join(map(str, args))} printed a traceback:\n{stderr[-3000:]}"
    return stderr


def valid(text: str) -> dict:
    """Exactly one JSON document that the schema accepts."""
    document = json.loads(text)
    jsonschema.Draft202012Validator(SCHEMA).validate(document)
    return document


def digests(document: dict) -> dict[str, str]:
    """Image name -> digest, of a document (or a release in one) that lists images."""
    return {name: image["digest"] for name, image in document["images"].items()}


def client(base_url: str) -> httpx.Client:
    """A cookie-keeping client that does not follow redirects, so each hop can be checked."""
    return httpx.Client(base_url=base_url, follow_redirects=False, timeout=10)


def login(http: httpx.Client, email: str, password: str) -> httpx.Response:
    return http.post(
        "/login", data={"emailaddress": email, "password": password}, headers={"Origin": str(http.base_url).rstrip("/")}
    )


def same_origin(http: httpx.Client) -> dict[str, str]:
    return {"Origin": str(http.base_url).rstrip("/")}


def table_names(html: str) -> list[tuple[str, str]]:
    """(first name, last name) of each row of the people table."""
    return re.findall(r"<td>([^<]*)</td><td>([^<]*)</td>", html)
