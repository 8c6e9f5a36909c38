"""The environment's users (deploy/users.py): smoke users generated once, demo users only where enabled, users
added with `user add` kept; and no render carries a user or a password."""

from __future__ import annotations

import base64
import json
import stat
from dataclasses import replace
from pathlib import Path

import pytest

from deploy.model import suite
from deploy.model.environments import Environment, load_environment
from deploy.model.errors import ConfigError
from deploy.render.objects import render
from deploy.targets.local.stores import FileUsers
from deploy.users import Stored, from_secrets, wanted
from suitekit.passwords import hash_password, verify_password
from tests.deploy.inputs import VERSION, fake_images
from tests.helpers import k8sdeploy


def test_demo_users_only_where_the_environment_enables_them() -> None:
    assert [u.email for u in wanted(Environment(name="x", target="local"), Stored()).demo] == [
        "admin@test.com",
        "user@test.com",
    ]
    assert wanted(Environment(name="x", target="kubeconfig"), Stored()).demo == ()
    test_cluster = Environment(name="x", target="kubeconfig", demo_users=True, allow_plain_http=True)
    assert wanted(test_cluster, Stored()).demo != ()
    assert wanted(Environment(name="x", target="local", demo_users=False), Stored()).demo == ()
    assert load_environment("cluster").with_demo_users and not load_environment("staging").with_demo_users


def test_smoke_passwords_are_random_and_kept_and_added_users_stay() -> None:
    environment = Environment(name="x", target="kubeconfig")
    first = wanted(environment, Stored())
    admin, viewer = first.smoke
    assert (admin.email, viewer.email) == ("smoke-admin@k8sdeploy.invalid", "smoke-user@k8sdeploy.invalid")
    assert (admin.role, viewer.role) == ("admin", "user") and len(admin.password) >= 32
    assert wanted(environment, Stored()).smoke[0].password != admin.password  # random
    added = first.add("Boss@Example.com", "admin", "correct horse battery")
    again = wanted(environment, from_secrets(added.secret("ns"), added.smoke_secret("ns")))
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
    assert stat.S_IMODE(store.smoke_path.stat().st_mode) == 0o600
    assert store.read() == Stored({user.id: user for user in users.users}, {3: users.logins[2], 4: users.logins[3]})


def test_no_render_holds_a_user_or_a_password() -> None:
    """The users live in the Secret k8sdeploy keeps, not in what `render` prints (or a migration)."""
    for environment in (load_environment("staging"), Environment(name="x", target="local")):
        text = json.dumps(render(environment, "single-pod", fake_images(), VERSION).to_json())
        assert "admin@test.com" not in text and "smoke-admin" not in text and '\\"password' not in text


def test_the_smoke_login_uses_the_demo_users_where_they_exist() -> None:
    local = wanted(Environment(name="x", target="local"), Stored())
    assert [user.email for user in local.smoke] == ["admin@test.com", "user@test.com"]


def test_user_add_on_the_local_target_keeps_the_user_for_the_next_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from deploy.targets.local.containers import default_state_dir

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    config = tmp_path / "k8sdeploy.toml"
    config.write_text("[environments.usertest]\nlocal = {}\n")
    args = ["user", "add", "boss@example.com", "--role", "admin"]
    short = k8sdeploy(*args, "--password-stdin", env="usertest", config=config, stdin="short\n")
    assert short.exit_code == 2 and "shorter than 12 characters" in short.stderr
    added = k8sdeploy(*args, "--password-stdin", env="usertest", config=config, stdin="a long enough password\n")
    assert added.exit_code == 0, added.stderr
    assert added.stdout == ""  # a password given is never printed
    assert "run `k8sdeploy up --env usertest` to start the services with it" in added.stderr
    path = default_state_dir("usertest") / "users.json"
    kept = FileUsers(path).read().users
    assert (kept[100].email, kept[100].role) == ("boss@example.com", "admin")
    assert verify_password("a long enough password", kept[100].password_hash)
    assert "a long enough password" not in path.read_text()
    again = k8sdeploy(*args, env="usertest", config=config)
    assert again.exit_code == 2 and "already a user of environment usertest" in again.stderr


def test_no_password_in_clear_in_the_secret_the_services_read() -> None:
    environment = Environment(name="x", target="local")
    users = wanted(environment, Stored()).add("boss@example.com", "admin", "correct horse battery")
    for key, value in users.secret("ns")["data"].items():
        text = base64.b64decode(value).decode()
        assert "correct horse battery" not in text and '"password"' not in text, key
        assert not [login for login in users.logins if login.id in (3, 4) and login.password in text], key
    roles = json.loads(base64.b64decode(users.secret("ns")["data"]["seed-roles.json"]))
    assert roles[0] == {"id": 1, "role": "admin"} and all(set(entry) == {"id", "role"} for entry in roles)
    smoke = json.loads(base64.b64decode(users.smoke_secret("ns")["data"]["smoke-logins.json"]))
    assert [entry["email"] for entry in smoke] == ["smoke-admin@k8sdeploy.invalid", "smoke-user@k8sdeploy.invalid"]
    hashes = {user.email: user.password_hash for user in users.users}
    assert verify_password("correct horse battery", hashes["boss@example.com"])
    assert verify_password("admin", hashes["admin@test.com"])
    # the same hashes at the next `up`: the Secret does not change, the pods are not replaced
    assert wanted(environment, Stored({u.id: u for u in users.users})).users[:2] == users.users[:2]


def test_a_secret_written_with_clear_passwords_is_read_as_hashes_and_keeps_the_smoke_passwords() -> None:
    old = [
        {"id": 3, "email": "smoke-admin@k8sdeploy.invalid", "password": "s3cret-admin-password", "role": "admin"},
        {"id": 4, "email": "smoke-user@k8sdeploy.invalid", "password": "s3cret-user-password", "role": "user"},
        {"id": 100, "email": "boss@example.com", "password": "correct horse battery", "role": "admin"},
    ]
    secret = {"data": {"seed-users.json": base64.b64encode(json.dumps(old).encode()).decode()}}
    users = wanted(Environment(name="x", target="kubeconfig"), from_secrets(secret, None))
    assert [login.password for login in users.smoke] == ["s3cret-admin-password", "s3cret-user-password"]
    assert verify_password("correct horse battery", {u.id: u for u in users.users}[100].password_hash)
    assert "correct horse battery" not in users.document()


def test_remove_takes_an_added_user_away_and_refuses_the_others() -> None:
    users = wanted(Environment(name="x", target="local"), Stored()).add("boss@example.com", "admin", "a" * 12)
    assert [u.email for u in users.remove(" BOSS@example.com").users if u.id >= 100] == []
    with pytest.raises(ConfigError, match="not a user of environment x"):
        users.remove("nobody@example.com")
    with pytest.raises(ConfigError, match="makes itself"):
        users.remove("admin@test.com")


def test_demo_users_are_refused_where_the_gateway_listens_beyond_loopback(tmp_path: Path) -> None:
    config = tmp_path / "k8sdeploy.toml"
    config.write_text('[environments.open]\nlocal = { gateway_address = "0.0.0.0" }\ndemo_users = true\n')
    result = k8sdeploy("user", "list", env="open", config=config)
    assert result.exit_code == 2
    assert "demo_users = true gives admin@test.com the password admin, but the gateway listens on 0.0.0.0" in (
        result.stderr
    )
    assert not Environment(name="x", target="local", gateway_address="0.0.0.0").with_demo_users  # not by default


def test_user_remove_and_list_on_the_local_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    config = tmp_path / "k8sdeploy.toml"
    config.write_text("[environments.usertest]\nlocal = {}\n")
    added = k8sdeploy("user", "add", "boss@example.com", env="usertest", config=config)
    assert added.exit_code == 0, added.stderr
    listed = k8sdeploy("user", "list", env="usertest", config=config)
    assert listed.exit_code == 0, listed.stderr
    assert listed.stdout.splitlines() == [
        "1\tadmin@test.com\tadmin\tdemo",
        "2\tuser@test.com\tuser\tdemo",
        "3\tsmoke-admin@k8sdeploy.invalid\tadmin\tsmoke",
        "4\tsmoke-user@k8sdeploy.invalid\tuser\tsmoke",
        "100\tboss@example.com\tuser\tadded",
    ]
    removed = k8sdeploy("user", "remove", "boss@example.com", env="usertest", config=config)
    assert removed.exit_code == 0, removed.stderr
    assert "boss@example.com" not in k8sdeploy("user", "list", env="usertest", config=config).stdout
    again = k8sdeploy("user", "remove", "boss@example.com", env="usertest", config=config)
    assert again.exit_code == 2 and "is not a user of environment usertest" in again.stderr


def test_an_up_hashes_only_the_logins_that_are_new(monkeypatch: pytest.MonkeyPatch) -> None:
    """scrypt costs about 0.2 s a hash: the kept hash of a login k8sdeploy knows is used again, but never for a
    password it was not made from (a smoke login generated anew, a hash made with other parameters or salt)."""
    environment = Environment(name="x", target="local")
    first = wanted(environment, Stored())
    stored = from_secrets(first.secret("ns"), first.smoke_secret("ns"))
    hashes: list[str] = []
    monkeypatch.setattr(suite, "hashed", lambda email, password: hashes.append(email) or f"new {email}")
    assert wanted(environment, stored).users == first.users and hashes == []
    # the smoke logins lost, the users kept: new passwords, hashed anew (the kept hashes are of the old ones)
    again = wanted(environment, Stored(stored.users, {}))
    assert sorted(hashes) == ["smoke-admin@k8sdeploy.invalid", "smoke-user@k8sdeploy.invalid"]
    assert again.users[:2] == first.users[:2] and again.users[2].password_hash == "new smoke-admin@k8sdeploy.invalid"
    # a demo user's hash with another salt (or other parameters) than k8sdeploy's is not taken for its own
    other = replace(first.users[0], password_hash=hash_password("admin"))
    hashes.clear()
    wanted(environment, Stored({**stored.users, 1: other}, stored.logins))
    assert hashes == ["admin@test.com"]


def test_the_demo_users_hashes_are_made_once_per_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Their passwords are public: their hashes are kept in the cache, so a first `up` hashes only its new smoke
    users' passwords; a cached hash that is not k8sdeploy's for that login is not taken."""
    monkeypatch.setenv("K8SDEPLOY_CACHE", str(tmp_path / "cache"))
    environment = Environment(name="x", target="local")
    first = wanted(environment, Stored())
    hashes: list[str] = []
    real = suite.hashed
    monkeypatch.setattr(suite, "hashed", lambda email, password: hashes.append(email) or real(email, password))
    again = wanted(environment, Stored())
    assert sorted(hashes) == ["smoke-admin@k8sdeploy.invalid", "smoke-user@k8sdeploy.invalid"]
    assert again.users[:2] == first.users[:2] and verify_password("admin", again.users[0].password_hash)
    cached = tmp_path / "cache" / "demo-logins.json"
    cached.write_text(json.dumps({"admin@test.com": hash_password("not admin")}))
    hashes.clear()
    assert wanted(environment, Stored()).users[0] == first.users[0]
    assert "admin@test.com" in hashes
