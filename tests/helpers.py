"""Small HTTP helpers for talking to the suite through its gateway as a browser would."""

from __future__ import annotations

import re

import httpx


def client(base_url: str) -> httpx.Client:
    """A cookie-keeping client that does not follow redirects, so each hop can be checked."""
    return httpx.Client(base_url=base_url, follow_redirects=False, timeout=10)


def login(http: httpx.Client, email: str, password: str) -> httpx.Response:
    return http.post("/login", data={"emailaddress": email, "password": password},
                     headers={"Origin": str(http.base_url).rstrip("/")})


def same_origin(http: httpx.Client) -> dict[str, str]:
    return {"Origin": str(http.base_url).rstrip("/")}


def table_names(html: str) -> list[tuple[str, str]]:
    """(first name, last name) of each row of the people table."""
    return re.findall(r"<td>([^<]*)</td><td>([^<]*)</td>", html)
