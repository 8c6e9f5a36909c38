"""Versions come from git: release tags, describe-style in between, and a dirty marker per content."""

from __future__ import annotations

from pathlib import Path

import pytest

from deploy.model.errors import ConfigError
from deploy.model.version import last_change, source_url, version_of
from tests.deploy.conftest import git


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q", "-b", "main")
    (tmp_path / "a.txt").write_text("one\n")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "one", date="2024-01-01T00:00:00+00:00")
    return tmp_path


def commit(repo: Path, name: str, text: str, date: str) -> None:
    (repo / name).write_text(text)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", name, date=date)


def test_untagged_history_counts_from_zero(repo: Path) -> None:
    version = version_of(repo)
    assert version.version == f"0.0.0-1-g{version.commit[:7]}"
    assert not version.dirty
    assert version.epoch == 1704067200 and version.created == "2024-01-01T00:00:00Z"


def test_on_a_release_tag_the_version_is_the_tag(repo: Path) -> None:
    git(repo, "tag", "v1.2.3")
    assert version_of(repo).version == "1.2.3"


def test_after_a_tag_the_version_is_describe_style(repo: Path) -> None:
    git(repo, "tag", "v1.2.3")
    commit(repo, "b.txt", "two\n", "2024-01-02T00:00:00+00:00")
    commit(repo, "c.txt", "three\n", "2024-01-03T00:00:00+00:00")
    version = version_of(repo)
    assert version.version == f"1.2.3-2-g{version.commit[:7]}"


def test_other_tags_are_not_versions(repo: Path) -> None:
    git(repo, "tag", "deployed-to-staging")
    assert version_of(repo).version.startswith("0.0.0-1-g")


def test_a_dirty_tree_gets_a_marker_that_follows_its_content(repo: Path) -> None:
    git(repo, "tag", "v1.0.0")
    (repo / "a.txt").write_text("changed\n")
    first = version_of(repo)
    (repo / "new.txt").write_text("untracked\n")
    second = version_of(repo)
    assert first.dirty and second.dirty
    assert first.version.startswith("1.0.0-dirty-") and second.version.startswith("1.0.0-dirty-")
    assert first.version != second.version
    (repo / "new.txt").unlink()
    assert version_of(repo).version == first.version


def test_an_untracked_symlink_to_a_directory_marks_the_tree_dirty_by_its_target(repo: Path, tmp_path: Path) -> None:
    git(repo, "tag", "v1.0.0")
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    (repo / "link").symlink_to(tmp_path / "one")
    first = version_of(repo)
    (repo / "link").unlink()
    (repo / "link").symlink_to(tmp_path / "two")
    assert first.dirty and first.version.startswith("1.0.0-dirty-")
    assert version_of(repo).version != first.version


def test_layer_times_come_from_the_last_commit_touching_their_sources(repo: Path) -> None:
    commit(repo, "b.txt", "two\n", "2024-01-02T00:00:00+00:00")
    assert last_change(repo, ("a.txt",)) == 1704067200
    assert last_change(repo, ("b.txt",)) == 1704153600


def test_outside_git_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="git checkout"):
        version_of(tmp_path / "nowhere")


@pytest.mark.parametrize(
    "remote",
    [
        "git@github.com:org/suite.git",
        "https://github.com/org/suite",
        "https://user:token@github.com/org/suite.git",
        "ssh://git@github.com/org/suite",
    ],
)
def test_the_source_label_is_the_same_for_every_way_of_cloning(remote: str) -> None:
    assert source_url(remote) == "https://github.com/org/suite"


@pytest.mark.parametrize("remote", ["/tmp/pytest-of-root/pytest-104/release0/a", "./suite", "file:///srv/suite.git"])
def test_a_clone_of_a_local_path_gets_no_source_label(remote: str) -> None:
    assert source_url(remote) == ""


def test_what_documented_ci_steps_write_into_the_checkout_is_not_a_change(repo: Path) -> None:
    """google-github-actions/auth writes gha-creds-<16 hex>.json into $GITHUB_WORKSPACE (its src/main.ts): the
    version stays the commit's, with no .gitignore saying so; the same name in a sub-directory is a change."""
    clean = version_of(repo)
    (repo / "gha-creds-0123456789abcdef.json").write_text('{"type": "external_account"}\n')
    assert version_of(repo) == clean
    (repo / "sub").mkdir()
    (repo / "sub" / "gha-creds-0123456789abcdef.json").write_text("{}\n")
    assert version_of(repo).dirty
