"""A google-cloud client over REST at one of the endpoints of GoogleApis (deploy/model/googleapis.py), with its
credentials: how the gke kind and the Artifact Registry repository make theirs."""

from __future__ import annotations

from typing import Any

from deploy.model.googleapis import GoogleApis


def rest_client(client_class: Any, host: str, apis: GoogleApis) -> Any:
    """A google-cloud client of `client_class` over REST at `host` (each class has its own transport factory;
    their common base declares none, hence Any)."""
    transport = client_class.get_transport_class("rest")(
        host=host, credentials=apis.credentials, url_scheme=apis.scheme
    )
    return client_class(transport=transport)
