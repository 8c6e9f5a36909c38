"""The stages a Runner is made of, each a Protocol that compose.py's stages (deploy/stages.py, deploy/smoke.py)
meet: build (and its preview, which publishes nothing), verify, copy (promote's), smoke. Render, apply and wait are
the target's (deploy/targets), record the history's (deploy/model/releases.py). A runner without a build stage has
no `up` (deploy/runner/building.py): a missing stage is a type error."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from deploy.identity import Identity
from deploy.model.changes import ImagePlan
from deploy.model.images import BuildRecord, PublishedImage
from deploy.model.promotion import Promotion
from deploy.model.releases import ReleaseHistory
from deploy.model.schemas import Schemas
from deploy.model.version import Version
from deploy.smoke import Smoke
from deploy.users import Users


class BuildStage(Protocol):
    """`up` and `dev`: the images built and published; an Artifact Registry repository keeps `history`'s."""

    def __call__(self, history: ReleaseHistory, /) -> BuildRecord: ...


class PreviewStage(Protocol):
    """`diff`: the same images built, and what publishing them would do; nothing is published."""

    def __call__(self) -> tuple[Version, tuple[ImagePlan, ...]]: ...


class SchemasStage(Protocol):
    """`diff`: the migrations of the checkout."""

    def __call__(self) -> Schemas: ...


class VerifyStage(Protocol):
    """Before anything is applied: the images against the environment's `verify` (refuses with exit 10)."""

    def __call__(self, images: Mapping[str, PublishedImage], /) -> object: ...


class CopyStage(Protocol):
    """`promote`: the release's images into this environment's registry; `kept` are the versions it keeps."""

    def __call__(self, promotion: Promotion, kept: Sequence[str], /) -> BuildRecord: ...


class SmokeStage(Protocol):
    """The smoke login, as the environment's smoke users, reading its keys."""

    def __call__(self, users: Users, identity: Identity, /) -> Smoke: ...


def no_verify(images: Mapping[str, PublishedImage]) -> object:
    """An environment without `verify`: nothing is checked."""
    return None


class DatabaseImageStage(Protocol):
    """The MySQL server's image reference for a layout, "" for none (deploy/stages.py database_image);
    `publish`: pushed where it must be, else only named (diff)."""

    def __call__(self, layout: str, publish: bool, /) -> str: ...


def no_database_image(layout: str, publish: bool) -> str:
    """A Runner that is given no database stage renders with the environment's own mysql_image only."""
    return ""
