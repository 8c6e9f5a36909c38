"""k8sdeploy.toml: environments load validated, and each mistake is named in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from deploy.model.environments import Environment, load_environment
from deploy.model.errors import ConfigError, ExitCode

PIN = "sha256:" + "0" * 64


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "k8sdeploy.toml"
    path.write_text(text)
    return path


def test_shipped_environments_load() -> None:
    local = load_environment("local")
    assert (local.target, local.layout, local.registry) == ("local", "single-pod", "")
    staging = load_environment("staging")
    assert staging.target == "gke" and staging.gke.project and staging.service_type == "LoadBalancer"


@pytest.mark.parametrize(
    "text,message",
    [
        (
            "[environments.x]\ntarget='local'\nlayout='nope'\n",
            "environment 'x': layout: Input should be 'single-pod' or 'split-pods'",
        ),
        ("[environments.x]\ntarget='local'\ncolour='red'\n", "environment 'x': colour: Extra inputs are not permitted"),
        ("[environments.x]\ntarget='gke'\n", "needs an [environments.x.gke] table"),
        (
            "[environments.x]\nlayout='single-pod'\n",
            "environment 'x': name the kind of target with its table: [environments.x.local], "
            "[environments.x.gke] or [environments.x.kubeconfig]",
        ),
        (
            "[environments.x.local]\n[environments.x.kubeconfig]\n",
            "[environments.x.local] and [environments.x.kubeconfig] name two kinds",
        ),
        (
            "[environments.x]\ntarget='cloud'\n",
            "environment 'x': target: Input should be 'local', 'gke' or 'kubeconfig'",
        ),
        ("[environments.x.local]\ncolour='red'\n", "environment 'x': local.colour: Extra inputs are not permitted"),
        ("[environments.x]\ntarget='local'\nkube_context='kind'\n", "kube_context applies to the kubeconfig target"),
        (
            "[environments.x]\ntls_secret='t'\n[environments.x.local]\n",
            "tls_secret applies to Kubernetes targets",
        ),
        ("[environments.x\n", "is not valid TOML"),
        (
            "[environments.x]\ntarget='local'\nmysql_image='mysql:8.4'\n",
            "mysql_image: 'mysql:8.4': it is not pinned by digest",
        ),
        (f"[environments.x]\ntarget='local'\nmysql_image='mysql:latest@{PIN}'\n", "it names the moving tag 'latest'"),
        (
            "[environments.x]\ntarget='local'\nreplicas={colour=2}\n",
            "replicas: no part named 'colour'; replicas are set for nginx-lua, frontend",
        ),
        (
            "[environments.x]\ntarget='local'\nreplicas={person=0}\n",
            "replicas.person: Input should be greater than or equal to 1",
        ),
        (
            "[environments.x]\ntarget='local'\nnamespace='Auth_Suite'\n",
            "environment 'x': namespace: String should match pattern",
        ),
        ("environments = 'x'\n", "environments must be a table of [environments.NAME] tables"),
        ("[environments]\nx = 3\n", "environments.x must be a table, not a int"),
        ("colour = 'red'\n[environments.x]\ntarget='local'\n", "unknown key 'colour' at the top level"),
        (
            "[environments.x]\ntarget='local'\nbases='python'\n",
            "environment 'x': bases: Input should be a valid dictionary",
        ),
        (
            "[environments.x]\ntarget='gke'\n[environments.x.gke]\nproject='my-project'\nlocation='l'\ncluster='c'\n"
            "source_ranges=['10.0.0.1/8']\n",
            "gke.source_ranges: '10.0.0.1/8' is not a CIDR range",
        ),
        (
            "[environments.x]\ntarget='gke'\n[environments.x.gke]\nproject='my-project'\nlocation='l'\ncluster='c'\n"
            "source_ranges=['everyone']\n",
            "gke.source_ranges: 'everyone' is not a CIDR range",
        ),
        (
            "[environments.x]\ntarget='local'\ngateway_address='localhost'\n",
            "gateway_address: 'localhost' is not an IP address",
        ),
        (
            "[environments.x]\ntarget='kubeconfig'\ngateway_address='0.0.0.0'\n",
            "gateway_address applies to the local target",
        ),
    ],
)
def test_mistakes_are_named(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=None) as caught:
        load_environment("x", write(tmp_path, text))
    assert message in str(caught.value)
    assert caught.value.exit_code == ExitCode.USAGE


def test_unknown_environment_lists_the_known_ones(tmp_path: Path) -> None:
    path = write(tmp_path, "[environments.a]\ntarget='local'\n[environments.b]\ntarget='local'\n")
    with pytest.raises(ConfigError, match="no environment 'c'.*choose one of: a, b"):
        load_environment("c", path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no configuration file"):
        load_environment("local", tmp_path / "none.toml")


def test_the_name_must_be_a_label_value(tmp_path: Path) -> None:
    # It becomes the app.kubernetes.io/instance label of every object.
    for bad in ("x y", "Staging", "2nd", "dev_1"):
        with pytest.raises(ConfigError, match=f"environment '{bad}': name: an environment name is lower-case letters"):
            load_environment(bad, write(tmp_path, f"[environments.'{bad}']\ntarget='local'\n"))


def test_a_gke_environment_whose_firewall_rule_name_would_be_too_long_is_refused(tmp_path: Path) -> None:
    name = "staging-" + "x" * 40
    text = (
        f"[environments.{name}]\ntarget='gke'\n"
        f"[environments.{name}.gke]\nproject='my-project'\nlocation='l'\ncluster='ms-auth'\n"
    )
    with pytest.raises(
        ConfigError,
        match=f"the firewall rule name 'k8sdeploy-ms-auth-{name}-gateway' \\(74 characters\\) "
        "is not a valid Compute name: shorten",
    ):
        load_environment(name, write(tmp_path, text))


def test_a_mysql_environment_with_a_pinned_image_loads(tmp_path: Path) -> None:
    text = f"[environments.x]\ntarget='local'\ndatabase='mysql'\nmysql_image='mariadb:11.4@{PIN}'\n"
    assert load_environment("x", write(tmp_path, text)).mysql_image == f"mariadb:11.4@{PIN}"


def test_a_mysql_environment_without_an_image_loads_and_gets_the_built_one(tmp_path: Path) -> None:
    """No mysql_image: the server is k8sdeploy's MariaDB image (the mariadb base, built from Debian's packages)."""
    environment = load_environment("x", write(tmp_path, "[environments.x]\ntarget='local'\ndatabase='mysql'\n"))
    assert (environment.database, environment.mysql_image) == ("mysql", "")


def test_a_file_that_is_not_utf8_is_named_with_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "k8sdeploy.toml"
    path.write_bytes(b"[environments.x]\ntarget = 'local' # caf\xe9\n")
    with pytest.raises(ConfigError) as caught:
        load_environment("x", path)
    assert "is not UTF-8 text (line 2: byte 0xe9)" in caught.value.message and caught.value.exit_code == ExitCode.USAGE


def test_the_local_gateway_listens_on_loopback_unless_the_environment_says_otherwise(tmp_path: Path) -> None:
    local = load_environment("x", write(tmp_path, "[environments.x.local]\n")).kind_table
    assert (local.gateway_listen(8080), local.service_address) == ("127.0.0.1:8080", "127.0.0.1")
    opened = load_environment("x", write(tmp_path, "[environments.x.local]\ngateway_address='0.0.0.0'\n"))
    assert opened.kind_table.gateway_listen(8080) == "0.0.0.0:8080"
    v6 = load_environment("x", write(tmp_path, "[environments.x.local]\ngateway_address='::1'\n"))
    assert v6.kind_table.gateway_listen(8080) == "[::1]:8080"
    cluster = load_environment("x", write(tmp_path, "[environments.x.kubeconfig]\n")).kind_table
    assert (cluster.gateway_listen(8080), cluster.service_address) == ("8080", "0.0.0.0")


GKE = "project = 'my-project'\nlocation = 'l'\ncluster = 'c'\n"
OLD_AND_NEW = [
    (
        "target = 'local'\ngateway_address = '0.0.0.0'\n",
        "[environments.x.local]\ngateway_address = '0.0.0.0'\n",
        "local",
    ),
    (
        "target = 'kubeconfig'\nkube_context = 'kind'\nkubeconfig = '/k'\n",
        "[environments.x.kubeconfig]\ncontext = 'kind'\nfile = '/k'\n",
        "kubeconfig",
    ),
    (f"target = 'gke'\n[environments.x.gke]\n{GKE}", f"[environments.x.gke]\n{GKE}", "gke"),
]


@pytest.mark.parametrize("old,new,kind", OLD_AND_NEW)
def test_the_old_form_loads_as_the_new_with_one_deprecation_line(tmp_path: Path, old: str, new: str, kind: str) -> None:
    common = "[environments.x]\nlayout = 'split-pods'\nallow_plain_http = true\n"
    said: list[str] = []
    old_form = load_environment("x", write(tmp_path, common + old), said.append)
    assert len(said) == 1 and f"target = '{kind}'; write [environments.x.{kind}] with that kind's keys" in said[0]
    assert load_environment("x", write(tmp_path, common + new), said.append) == old_form
    assert len(said) == 1 and old_form.target == kind and old_form.layout == "split-pods"


def test_the_old_form_warns_on_stderr_once_per_load(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    load_environment("x", write(tmp_path, "[environments.x]\ntarget = 'local'\n"))
    assert capsys.readouterr().err.count("deprecated: [environments.x]") == 1
    load_environment("x", write(tmp_path, "[environments.x.local]\n"))
    assert capsys.readouterr().err == ""


def test_an_external_mysql_server_is_an_address_and_a_secret_and_excludes_an_image() -> None:
    def loaded(**changes: object) -> Environment:
        keys = {"name": "prod", "kubeconfig": {"context": "c"}, "layout": "split-pods", "database": "mysql", **changes}
        return Environment.model_validate(keys)

    server = loaded(mysql_server={"address": "[fd00::5]:3306", "secret": "cloud-sql"}).mysql_server
    assert server is not None and (server.cidr, server.port) == ("fd00::5/128", 3306)
    for bad, said in (
        ({"address": "db.internal:3306", "secret": "s"}, "is not IP:PORT"),
        ({"address": "10.0.0.5", "secret": "s"}, "is not IP:PORT"),
        ({"address": "10.0.0.5:", "secret": "s"}, "has no port"),
    ):
        with pytest.raises(ValidationError, match=said):
            loaded(mysql_server=bad)
    with pytest.raises(ValidationError, match="give one"):
        loaded(mysql_server={"address": "10.0.0.5:3306", "secret": "s"}, mysql_image="m@sha256:" + "a" * 64)
    with pytest.raises(ValidationError, match='applies to database = "mysql"'):
        loaded(mysql_server={"address": "10.0.0.5:3306", "secret": "s"}, database="sqlite")
