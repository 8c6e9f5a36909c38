"""Small helpers the tests share: the `k8sdeploy` command line run in-process and the JSON documents it prints,
and HTTP helpers for talking to the suite through its gateway as a browser would."""

from __future__ import annotations

import json
import re
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
    return CliRunner().invoke(main, [*args, *options], env=environ, input=stdin, catch_exceptions=catch_exceptions)


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
