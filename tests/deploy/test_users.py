"""The environment's users (deploy/users.py): smoke users generated once, demo users only where enabled, users
added with `user add` kept; and no render carries a user or a password."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from deploy.model.environments import Environment, load_environment
from deploy.model.errors import ConfigError
from deploy.render.objects import render
from deploy.users import FileUsers, from_secret, wanted
from tests.deploy.inputs import VERSION, fake_images
from tests.helpers import k8sdeploy


def test_demo_users_only_where_the_environment_enables_them() -> None:
    assert [u.email for u in wanted(Environment(name="x", target="local"), {}).demo] == [
        "admin@test.com",
        "user@test.com",
    ]
    assert wanted(Environment(name="x", target="kubeconfig"), {}).demo == ()
    assert wanted(Environment(name="x", target="kubeconfig", demo_users=True), {}).demo != ()
    assert wanted(Environment(name="x", target="local", demo_users=False), {}).demo == ()
    assert load_environment("cluster").with_demo_users and not load_environment("staging").with_demo_users


def test_smoke_passwords_are_random_and_kept_and_added_users_stay() -> None:
    environment = Environment(name="x", target="kubeconfig")
    first = wanted(environment, {})
    admin, viewer = first.smoke
    assert (admin.email, viewer.email) == ("smoke-admin@k8sdeploy.invalid", "smoke-user@k8sdeploy.invalid")
    assert (admin.role, viewer.role) == ("admin", "user") and len(admin.password) >= 32
    assert wanted(environment, {}).smoke[0].password != admin.password  # random
    added = first.add("Boss@Example.com", "admin", "correct horse battery")
    again = wanted(environment, from_secret(added.secret("ns")))
    assert again.smoke == first.smoke  # generated once per environment
    assert [(u.id, u.email, u.role) for u in again.users if u.id >= 100] == [(100, "boss@example.com", "admin")]
    with pytest.raises(ConfigError, match="already a user"):
        again.add("boss@example.com", "user", "another password")
    with pytest.raises(ConfigError, match="no role 'root'"):
        again.add("x@example.com", "root", "another password")


def test_the_local_target_keeps_them_in_a_private_file(tmp_path: Path) -> None:
    store = FileUsers(tmp_path / "state" / "users.json")
    users = wanted(Environment(name="x", target="local"), store.read())
    store.write(users)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert store.read() == {user.id: user for user in users.users}


def test_no_render_holds_a_user_or_a_password() -> None:
    """The users live in the Secret k8sdeploy keeps, not in what `render` prints (or a migration)."""
    for environment in (load_environment("staging"), Environment(name="x", target="local")):
        text = json.dumps(render(environment, "single-pod", fake_images(), VERSION).to_json())
        assert "admin@test.com" not in text and "smoke-admin" not in text and '\\"password' not in text


def test_the_smoke_login_uses_the_demo_users_where_they_exist() -> None:
    local = wanted(Environment(name="x", target="local"), {})
    assert [user.email for user in local.smoke] == ["admin@test.com", "user@test.com"]


def test_user_add_on_the_local_target_keeps_the_user_for_the_next_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deploy.targets.local.containers import default_state_dir

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    config = tmp_path / "k8sdeploy.toml"
    config.write_text('[environments.usertest]\ntarget = "local"\n')
    args = ["user", "add", "boss@example.com", "--role", "admin"]
    short = k8sdeploy(*args, "--password-stdin", env="usertest", config=config, stdin="short\n")
    assert short.exit_code == 2 and "shorter than 12 characters" in short.stderr
    added = k8sdeploy(*args, "--password-stdin", env="usertest", config=config, stdin="a long enough password\n")
    assert added.exit_code == 0, added.stderr
    assert added.stdout == ""  # a password given is never printed
    assert "run `k8sdeploy up --env usertest` to start the services with it" in added.stderr
    kept = FileUsers(default_state_dir("usertest") / "users.json").read()
    assert (kept[100].email, kept[100].role, kept[100].password) == (
        "boss@example.com",
        "admin",
        "a long enough password",
    )
    again = k8sdeploy(*args, env="usertest", config=config)
    assert again.exit_code == 2 and "already a user of environment usertest" in again.stderr
