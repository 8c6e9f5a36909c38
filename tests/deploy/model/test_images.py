"""Published images are digest-pinned under a version tag, and the build record round-trips."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.model.errors import ConfigError
from deploy.model.images import STATE_DIR, BuildRecord, PublishedImage, build_record_path, pinning_problem

DIGEST = "sha256:" + "ab" * 32


def test_ref_pins_tag_and_digest() -> None:
    image = PublishedImage("127.0.0.1:5000/suite/person", "1.2.3", DIGEST)
    assert image.ref == f"127.0.0.1:5000/suite/person:1.2.3@{DIGEST}"


@pytest.mark.parametrize(
    "tag,digest,message",
    [
        ("latest", DIGEST, "moving tag"),
        ("develop", DIGEST, "moving tag"),
        ("1.0.0", "sha256:abc", "not a sha256"),
    ],
)
def test_moving_tags_and_bad_digests_are_refused(tag: str, digest: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        PublishedImage("r/person", tag, digest)


def test_record_round_trips(tmp_path: Path) -> None:
    record = BuildRecord(
        "1.0.0-3-gabc1234",
        "abc1234" * 5 + "abcde",
        {"person": PublishedImage("r/person", "1.0.0-3-gabc1234", DIGEST, 123)},
    )
    path = tmp_path / "record.json"
    record.save(path)
    loaded = BuildRecord.load(path)
    assert loaded.images["person"] == record.images["person"]
    assert (loaded.version, loaded.commit) == (record.version, record.commit)


def test_missing_or_broken_record_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="run `k8sdeploy build` first"):
        BuildRecord.load(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ConfigError, match="not a k8sdeploy build record"):
        BuildRecord.load(tmp_path / "bad.json")


@pytest.mark.parametrize(
    "reference,problem",
    [
        (f"mysql:8.4@{DIGEST}", ""),
        (f"127.0.0.1:5000/db/mariadb@{DIGEST}", ""),
        ("mysql:8.4", "not pinned by digest"),
        ("mysql@sha256:abc", "not pinned by digest"),
        (f"mysql:latest@{DIGEST}", "moving tag 'latest'"),
        (f"127.0.0.1:5000/mysql:develop@{DIGEST}", "moving tag 'develop'"),
    ],
)
def test_pinning_problem(reference: str, problem: str) -> None:
    found = pinning_problem(reference)
    assert (problem in found) if problem else found == ""


def test_the_build_record_of_an_environment_has_one_place() -> None:
    assert build_record_path("staging") == STATE_DIR / "builds" / "staging.json"
