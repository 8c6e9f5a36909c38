"""Rendered layouts: golden files, the Kubernetes schemas, pinned images, and the rules every container keeps.

Regenerate the golden files after an intended change with K8SDEPLOY_UPDATE_GOLDEN=1, and read the diff.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterator

import kubernetes_validate
import pytest
import yaml

from deploy.model.environments import Environment
from deploy.model.suite import (
    APP_USER_ID,
    DATA_DIR,
    GATEWAY_COMMAND,
    GATEWAY_CONF,
    GATEWAY_LUA_DIR,
    GATEWAY_RUNTIME_DIR,
    SCRATCH_DIR,
    SERVICES,
)
from deploy.render.gateway import GatewayConfig, render_nginx_conf
from deploy.render.objects import Rendered, render
from tests.deploy.inputs import (
    MYSQL_IMAGE,
    VARIANTS,
    VERSION,
    containers,
    fake_images,
    of_kind,
    pod_templates,
    render_variant,
    selects,
)
from tests.infra import ROOT

GOLDEN = ROOT / "tests" / "deploy" / "render" / "golden"
SCHEMA_VERSIONS = ("1.30", "1.37")  # the oldest release we support, the newest the package ships
PINNED = re.compile(r"^[^@\s]+:(?P<tag>[^:@/\s]+)@sha256:[0-9a-f]{64}$")
LABELS = (
    "app.kubernetes.io/part-of",
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
)


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def variant(request: pytest.FixtureRequest) -> tuple[str, Rendered]:
    return request.param, render_variant(request.param)


def test_matches_its_golden_file(variant: tuple[str, Rendered]) -> None:
    name, rendered = variant
    golden = GOLDEN / f"{name}.yaml"
    if os.environ.get("K8SDEPLOY_UPDATE_GOLDEN"):
        golden.write_text(rendered.yaml)
    assert list(yaml.safe_load_all(golden.read_text())) == list(rendered.objects), (
        f"{golden.name} differs; if the change is intended, run K8SDEPLOY_UPDATE_GOLDEN=1 pytest {__file__}"
    )


@pytest.mark.parametrize("kubernetes", SCHEMA_VERSIONS)
def test_every_object_is_valid_for_kubernetes(variant: tuple[str, Rendered], kubernetes: str) -> None:
    for item in variant[1].objects:
        # strict: a misspelt or misplaced field fails too; raises for an unknown kind as well
        assert kubernetes_validate.validate(item, kubernetes, strict=True) == kubernetes


def test_no_two_objects_share_a_kind_and_name(variant: tuple[str, Rendered]) -> None:
    keys = [(item["kind"], item["metadata"]["name"]) for item in variant[1].objects]
    assert len(keys) == len(set(keys))


def test_yaml_and_json_carry_the_same_objects(variant: tuple[str, Rendered]) -> None:
    rendered = variant[1]
    assert yaml.safe_load(rendered.to_json()) == {"apiVersion": "v1", "kind": "List", "items": list(rendered.objects)}


def test_every_image_is_pinned_by_digest_under_a_fixed_tag(variant: tuple[str, Rendered]) -> None:
    references = [container["image"] for container in containers(variant[1].objects)]
    assert references
    for reference in references:
        match = PINNED.match(reference)
        assert match, f"{reference} is not repository:tag@sha256:digest"
        assert match["tag"] not in ("latest", "develop")
    assert not re.search(r"\b(latest|develop)\b", variant[1].yaml)


def test_every_container_is_locked_down_probed_and_limited(variant: tuple[str, Rendered]) -> None:
    for _, template in pod_templates(variant[1].objects):
        pod = template["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["automountServiceAccountToken"] is False
        for container in pod["containers"]:
            assert container["securityContext"] == {
                "runAsNonRoot": True,
                "runAsUser": APP_USER_ID,
                "runAsGroup": APP_USER_ID,
                "readOnlyRootFilesystem": True,
                "allowPrivilegeEscalation": False,
                "capabilities": {"drop": ["ALL"]},
            }, container["name"]
            assert container["imagePullPolicy"] == "IfNotPresent"
            assert set(container["resources"]) == {"requests", "limits"}
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]) & set(container["resources"]["limits"])
            port = container["ports"][0]["containerPort"]
            if container["name"] == "mysql":
                assert container["readinessProbe"]["tcpSocket"] == {"port": port}
                assert container["livenessProbe"]["tcpSocket"] == {"port": port}
            else:
                assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": port}
                assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": port}


def test_every_object_and_pod_carries_the_owner_labels(variant: tuple[str, Rendered]) -> None:
    environment = VARIANTS[variant[0]][0]
    labelled = [item["metadata"] for item in variant[1].objects]
    labelled += [
        template["metadata"] for w, template in pod_templates(variant[1].objects) if w["kind"] != "StatefulSet"
    ]
    for metadata in labelled:
        labels = metadata["labels"]
        assert tuple(labels) == LABELS, metadata.get("name")
        assert labels["app.kubernetes.io/part-of"] == "auth-suite"
        assert labels["app.kubernetes.io/instance"] == environment.name
        assert labels["app.kubernetes.io/version"] == VERSION
        assert labels["app.kubernetes.io/managed-by"] == "k8sdeploy"
    # the database server's pods: the owner labels without the suite's version (a new version leaves them running)
    for workload, template in pod_templates(variant[1].objects):
        if workload["kind"] == "StatefulSet":
            assert tuple(template["metadata"]["labels"]) == tuple(label for label in LABELS if "version" not in label)
    namespaces = {item["metadata"]["namespace"] for item in variant[1].objects}
    assert namespaces == {environment.namespace}


def test_pods_run_the_commands_of_the_suite(variant: tuple[str, Rendered]) -> None:
    commands = {container["name"]: container.get("command") for container in containers(variant[1].objects)}
    assert commands.pop("nginx-lua") == list(GATEWAY_COMMAND)
    assert commands.pop("mysql", None) is None  # the server image runs its own entrypoint
    assert commands == {service.name: list(service.command) for service in SERVICES}


def test_the_gateway_reads_the_layouts_nginx_conf_from_a_config_map(variant: tuple[str, Rendered]) -> None:
    name, rendered = variant
    environment = VARIANTS[name][0]
    host = {"single-pod": "127.0.0.1"}.get(name)
    upstreams = {
        s: f"{host or s}:{port}" for s, port in (("frontend", 8081), ("authentication", 8082), ("session", 8084))
    }
    listen = "127.0.0.1:8080" if environment.target == "local" else "8080"  # the local target: loopback only
    expected = render_nginx_conf(
        GatewayConfig(
            upstreams,
            listen=listen,
            runtime_dir=GATEWAY_RUNTIME_DIR,
            lua_dir=GATEWAY_LUA_DIR,
            secure_cookies=environment.secure_cookies,
        )
    )
    assert of_kind(rendered.objects, "ConfigMap")["nginx-lua-conf"]["data"]["nginx.conf"] == expected
    gateway = next(c for c in containers(rendered.objects) if c["name"] == "nginx-lua")
    mount = next(m for m in gateway["volumeMounts"] if m["mountPath"] == GATEWAY_CONF)
    assert mount["subPath"] == "nginx.conf" and mount["readOnly"] is True


def test_every_mount_has_its_volume_and_writable_scratch(variant: tuple[str, Rendered]) -> None:
    for workload, template in pod_templates(variant[1].objects):
        volumes = {volume["name"] for volume in template["spec"]["volumes"]}
        volumes |= {claim["metadata"]["name"] for claim in workload["spec"].get("volumeClaimTemplates", [])}
        mounted = set()
        for container in template["spec"]["containers"]:
            paths = {mount["mountPath"] for mount in container["volumeMounts"]}
            assert (GATEWAY_RUNTIME_DIR if container["name"] == "nginx-lua" else SCRATCH_DIR) in paths
            mounted |= {mount["name"] for mount in container["volumeMounts"]}
        assert mounted == volumes, workload["metadata"]["name"]


def test_single_pod_keeps_sqlite_on_claims_and_reaches_peers_on_localhost() -> None:
    rendered = render_variant("single-pod")
    [(workload, template)] = pod_templates(rendered.objects)
    assert workload["spec"]["replicas"] == 1 and workload["spec"]["strategy"]["type"] == "Recreate"
    assert [c["name"] for c in template["spec"]["containers"]] == ["nginx-lua", *(s.name for s in SERVICES)]
    env = {
        c["name"]: {e["name"]: e.get("value", e.get("valueFrom")) for e in c.get("env", [])}
        for c in template["spec"]["containers"]
    }
    assert env["person"]["AUTHORISATION_URL"] == "http://127.0.0.1:8083"
    users = {"secretKeyRef": {"name": "k8sdeploy-users", "key": "seed-users.json", "optional": True}}
    roles = {"secretKeyRef": {"name": "k8sdeploy-users", "key": "seed-roles.json", "optional": True}}
    assert env["authentication"]["SEED_USERS"] == users  # never a password: from the Secret, which holds hashes
    assert env["authorisation"]["SEED_USERS"] == roles  # ids and roles only
    assert env["authentication"]["MEMORY_LIMIT"] == "256Mi"  # its container's limit, bounding its hashes
    assert "SEED_USERS" not in env["person"]
    assert env["frontend"]["PERSON_URL"] == "http://127.0.0.1:8085"
    assert env["session"]["DATABASE_PATH"] == f"{DATA_DIR}/session.db"
    assert "DATABASE_PATH" not in env["frontend"]  # frontend keeps no data
    data = {v["name"]: v for v in template["spec"]["volumes"] if v["name"].endswith("-data")}
    claims = of_kind(rendered.objects, "PersistentVolumeClaim")
    assert len(data) == 4 and set(claims) == set(data)  # before: emptyDir, so every up started from empty databases
    assert all(v["persistentVolumeClaim"] == {"claimName": name} for name, v in data.items())
    assert claims["person-data"]["metadata"]["labels"]["app.kubernetes.io/name"] == "person"  # as in split-pods
    assert set(of_kind(rendered.objects, "Service")) == {"nginx-lua"}
    assert rendered.notes == ()


@pytest.mark.parametrize("layout", ["single-pod", "split-pods"])
def test_ephemeral_data_puts_sqlite_on_empty_dirs_and_says_so(layout: str) -> None:
    environment = Environment(name="demo", target="local", layout=layout, ephemeral_data=True)
    rendered = render(environment, layout, fake_images(), VERSION)
    assert of_kind(rendered.objects, "PersistentVolumeClaim") == {}
    data = [v for _, t in pod_templates(rendered.objects) for v in t["spec"]["volumes"] if v["name"].endswith("-data")]
    assert len(data) == 4 and all(v == {"name": v["name"], "emptyDir": {}} for v in data)
    assert any("ephemeral_data" in note and "gone with their pod" in note for note in rendered.notes)


def test_ephemeral_data_is_refused_with_mysql() -> None:
    with pytest.raises(ValueError, match="ephemeral_data applies to SQLite files"):
        Environment(name="p", target="kubeconfig", database="mysql", mysql_image=MYSQL_IMAGE, ephemeral_data=True)


def test_split_pods_scale_by_the_environment_and_keep_sqlite_on_claims() -> None:
    rendered = render_variant("split-pods")
    workloads = of_kind(rendered.objects, "Deployment")
    assert {name: w["spec"]["replicas"] for name, w in workloads.items()} == {
        "nginx-lua": 2,
        "frontend": 3,
        "authentication": 1,
        "authorisation": 1,
        "session": 1,
        "person": 1,
    }
    assert workloads["person"]["spec"]["strategy"]["type"] == "Recreate"  # one pod at a time on its claim
    assert workloads["frontend"]["spec"]["strategy"]["type"] == "RollingUpdate"
    assert set(of_kind(rendered.objects, "PersistentVolumeClaim")) == {
        "authentication-data",
        "authorisation-data",
        "session-data",
        "person-data",
    }
    services = of_kind(rendered.objects, "Service")
    assert services["nginx-lua"]["spec"]["type"] == "NodePort"
    assert {services[n]["spec"]["type"] for n in services if n != "nginx-lua"} == {"ClusterIP"}


def test_split_pods_on_mysql_use_a_stateful_server_and_secret_urls() -> None:
    rendered = render_variant("split-pods-mysql")
    assert not of_kind(rendered.objects, "PersistentVolumeClaim")
    [server] = of_kind(rendered.objects, "StatefulSet").values()
    assert server["spec"]["template"]["spec"]["containers"][0]["image"] == VARIANTS["split-pods-mysql"][0].mysql_image
    assert server["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"]
    secret_keys = set(of_kind(rendered.objects, "Secret")["mysql"]["data"])
    for container in containers(rendered.objects):
        for variable in container.get("env", []):
            if "valueFrom" in variable and variable["name"] != "SEED_USERS":  # the users: k8sdeploy-users
                assert variable["valueFrom"]["secretKeyRef"]["key"] in secret_keys
                assert variable["valueFrom"]["secretKeyRef"]["name"] == "mysql"
    person = of_kind(rendered.objects, "Deployment")["person"]
    assert person["spec"]["replicas"] == 2  # allowed: the data is in MySQL
    assert of_kind(rendered.objects, "Service")["nginx-lua"]["spec"]["type"] == "LoadBalancer"


def test_mysql_on_a_server_of_its_own_runs_none_and_admits_only_that_address() -> None:
    """mysql_server (Cloud SQL by its private address, say): no server pod, no MySQL Secret (no secret needed to
    render), each service's DATABASE_URL from the environment's Secret, and egress to that address and port only
    from the pods whose services keep data there."""
    environment, _ = VARIANTS["split-pods-mysql"]
    server = {"address": "10.20.0.5:3307", "secret": "cloud-sql"}
    environment = Environment.model_validate({**environment.model_dump(), "mysql_image": "", "mysql_server": server})
    rendered = render(environment, "split-pods", fake_images(), VERSION)  # no mysql_secret
    assert not of_kind(rendered.objects, "StatefulSet") and "mysql" not in of_kind(rendered.objects, "Secret")
    assert "mysql" not in of_kind(rendered.objects, "Service")
    urls = {
        workload["metadata"]["name"]: variable["valueFrom"]["secretKeyRef"]
        for workload, template in pod_templates(rendered.objects)
        for variable in template["spec"]["containers"][0].get("env", [])
        if variable["name"] == "DATABASE_URL"
    }
    assert sorted(urls) == sorted(service.name for service in SERVICES if service.database)
    assert all(ref == {"name": "cloud-sql", "key": f"{name}-database-url"} for name, ref in urls.items())
    policies = of_kind(rendered.objects, "NetworkPolicy")
    for name in ("nginx-lua", *(service.name for service in SERVICES)):
        blocks = [rule for rule in policies[f"{name}-egress"]["spec"]["egress"] if "ipBlock" in rule["to"][0]]
        expected = [{"to": [{"ipBlock": {"cidr": "10.20.0.5/32"}}], "ports": [{"protocol": "TCP", "port": 3307}]}]
        assert blocks == (expected if name in urls else []), name


def test_render_does_not_compute_tags() -> None:
    # The references come from the build record as they are, whatever the registry or tag.
    environment, layout = VARIANTS["single-pod"]
    images = fake_images("europe-west1-docker.pkg.dev/p/suite")
    rendered = render(environment, layout, images, VERSION)
    assert sorted(c["image"] for c in containers(rendered.objects)) == sorted(i.ref for i in images.values())


def addresses(rendered: Rendered) -> Iterator[tuple[dict, str, int]]:
    """(pod template, host, port) for each address a container of the pod is given: URLs in env,
    the Secret's DATABASE_URLs, the gateway's upstreams."""
    secrets = {
        key: base64.b64decode(value).decode()
        for item in of_kind(rendered.objects, "Secret").values()
        for key, value in item["data"].items()
    }
    nginx_conf = of_kind(rendered.objects, "ConfigMap")["nginx-lua-conf"]["data"]["nginx.conf"]
    for _, template in pod_templates(rendered.objects):
        for container in template["spec"]["containers"]:
            env = container.get("env", [])
            values = [
                v.get("value") or secrets.get(v["valueFrom"]["secretKeyRef"]["key"], "")
                for v in env
                if "value" in v or not v["valueFrom"]["secretKeyRef"].get("optional")
            ]  # not: SEED_USERS
            if container["name"] == "nginx-lua":
                values += re.findall(r"server (\S+);", nginx_conf)
            for value in values:
                if match := re.search(r"(?:^|//|@)([a-z0-9.-]+):(\d+)(?:/|$)", value):
                    yield template, match[1], int(match[2])


def test_every_address_reaches_a_container_listening_there(variant: tuple[str, Rendered]) -> None:
    rendered = variant[1]
    services = of_kind(rendered.objects, "Service")
    templates = [template for _, template in pod_templates(rendered.objects)]
    found = list(addresses(rendered))
    # three upstreams, two peer URLs, and with MySQL four DATABASE_URLs
    assert len(found) == (9 if variant[0] == "split-pods-mysql" else 5)
    for template, host, port in found:
        if host == "127.0.0.1":
            targets = [template]
        else:
            service = services[host]
            [entry] = [p for p in service["spec"]["ports"] if p["port"] == port]
            port = entry["targetPort"]
            targets = [t for t in templates if selects(service["spec"]["selector"], t["metadata"]["labels"])]
            assert len(targets) == 1, f"Service {host} selects {len(targets)} workloads"
        listening = {p["containerPort"] for c in targets[0]["spec"]["containers"] for p in c["ports"]}
        assert port in listening, f"nothing listens on {host}:{port}"


def test_the_gateway_service_exposes_the_gateways_port(variant: tuple[str, Rendered]) -> None:
    environment = VARIANTS[variant[0]][0]
    service = of_kind(variant[1].objects, "Service")["nginx-lua"]
    assert service["spec"]["type"] == environment.service_type
    assert service["spec"]["externalTrafficPolicy"] == "Local"  # the login limit sees each client's address
    assert service["spec"]["ports"] == [
        {"name": "http", "protocol": "TCP", "port": environment.gateway_port, "targetPort": 8080}
    ]
    [target] = [
        t for _, t in pod_templates(variant[1].objects) if selects(service["spec"]["selector"], t["metadata"]["labels"])
    ]
    assert "nginx-lua" in [c["name"] for c in target["spec"]["containers"]]
