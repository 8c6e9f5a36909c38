"""`doctor`'s identity check: each CI job's workload identity provider exists, is active, trusts GitHub's issuer,
maps google.subject, and its attribute condition admits this job's token and refuses the others.

The provider as IAM answers it: https://cloud.google.com/iam/docs/reference/rest/v1/projects.locations.
workloadIdentityPools.providers (state, disabled, attributeMapping, attributeCondition, oidc.issuerUri). Its
mapping and condition are CEL over the token's claims (`assertion`) and the mapped `attribute`s
(https://cloud.google.com/iam/docs/workload-identity-federation#conditions); a claim the token lacks makes the
expression an error, and IAM refuses the token then, as here. The claims of a GitHub Actions token:
https://docs.github.com/en/actions/reference/openid-connect-reference (sub is repo:OWNER/REPO:environment:NAME
for a job with an environment)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

import celpy
from google.api_core import exceptions as gexc

from deploy.model.doctor import Finding, missing, passed
from deploy.model.environments import Ci, CiIdentity, Environment
from deploy.targets.gke.rest import FAILED, Rest, refusal

ISSUER = "https://token.actions.githubusercontent.com"


@dataclass(frozen=True)
class Token:
    """What of a GitHub Actions OIDC token a condition may look at."""

    repository: str
    environment: str
    ref: str
    event_name: str

    @classmethod
    def of(cls, ci: Ci, identity: CiIdentity) -> Token:
        ref = identity.refs[0] if identity.refs else "refs/heads/main"
        ref = ref[:-1] + "1" if ref.endswith("*") else ref  # a prefix: a ref it covers
        return cls(ci.repository, identity.environment, ref, identity.events[0] if identity.events else "push")

    def claims(self) -> dict:
        return {
            "iss": ISSUER,
            "sub": f"repo:{self.repository}:environment:{self.environment}",
            "repository": self.repository,
            "repository_owner": self.repository.split("/")[0],
            "environment": self.environment,
            "ref": self.ref,
            "ref_type": "tag" if self.ref.startswith("refs/tags/") else "branch",
            "event_name": self.event_name,
        }


def admitted(provider: Mapping, token: Token) -> bool:
    """Whether IAM would take `token` at `provider`: google.subject mapped, and the condition true."""
    environment = celpy.Environment()
    assertion = celpy.json_to_cel(token.claims())
    mapped: dict[str, dict] = {"google": {}, "attribute": {}}
    try:
        for key, expression in provider.get("attributeMapping", {}).items():
            group, _, name = key.partition(".")
            value = environment.program(environment.compile(expression)).evaluate({"assertion": assertion})
            mapped.setdefault(group, {})[name] = value
        if "subject" not in mapped["google"]:
            return False
        condition = provider.get("attributeCondition", "")
        if not condition:
            return True
        activation = {"assertion": assertion, **{group: celpy.json_to_cel(values) for group, values in mapped.items()}}
        answer = environment.program(environment.compile(condition)).evaluate(activation)
    except (celpy.CELParseError, celpy.CELEvalError, TypeError, ValueError):
        return False
    return isinstance(answer, celpy.celtypes.BoolType) and bool(answer)


def quoted(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def condition_for(ci: Ci, identity: CiIdentity) -> str:
    """An attribute condition that admits exactly `identity`'s jobs: its repository, environment, refs, events."""
    parts = [
        f"assertion.repository == {quoted(ci.repository)}",
        f"assertion.environment == {quoted(identity.environment)}",
    ]
    if identity.refs:
        refs = [
            f"assertion.ref.startsWith({quoted(ref[:-1])})" if ref.endswith("*") else f"assertion.ref == {quoted(ref)}"
            for ref in identity.refs
        ]
        parts.append(refs[0] if len(refs) == 1 else "(" + " || ".join(refs) + ")")
    if identity.events:
        parts.append(f"assertion.event_name in [{', '.join(quoted(event) for event in identity.events)}]")
    return " && ".join(parts)


def gcloud(provider: str, verb: str = "update-oidc") -> str:
    """`gcloud iam workload-identity-pools providers VERB` for the provider's resource name."""
    parts = provider.split("/")  # projects/N/locations/global/workloadIdentityPools/POOL/providers/NAME
    return (
        f"gcloud iam workload-identity-pools providers {verb} {parts[7]} --project={parts[1]} "
        f"--location={parts[3]} --workload-identity-pool={parts[5]}"
    )


def refused_tokens(ci: Ci, job: str, identity: CiIdentity) -> list[tuple[str, Token]]:
    """The tokens `identity`'s provider must refuse, each with what it stands for."""
    token = Token.of(ci, identity)
    owner, _, name = ci.repository.partition("/")
    found = [  # another owner's copy, and another repository of the owner
        (f"another repository ({other})", replace(token, repository=other))
        for other in (f"{owner}-fork/{name}", f"{owner}/{name}-other")
    ]
    for other_job, other in (("deploy", ci.deploy), ("preview", ci.preview)):
        if other is not None and other_job != job and other.environment != identity.environment:
            found.append((f"the {other_job} job's environment {other.environment}", Token.of(ci, other)))
    if identity.refs and not covers(identity.refs, "refs/heads/feature"):
        found.append(("another branch (refs/heads/feature)", replace(token, ref="refs/heads/feature")))
    if identity.events and "pull_request" not in identity.events:
        found.append(("a pull_request event", replace(token, event_name="pull_request")))
    return found


def covers(refs: tuple[str, ...], ref: str) -> bool:
    return any(ref.startswith(r[:-1]) if r.endswith("*") else ref == r for r in refs)


def provider_problems(provider: Mapping, name: str, fix: str) -> list[Finding]:
    """What makes a provider unusable or open whatever its condition says."""
    found = []
    if provider.get("state", "STATE_UNSPECIFIED") != "ACTIVE":
        found.append(missing("identity", f"provider {name} is {provider.get('state')}", gcloud(name, "undelete")))
    if provider.get("disabled"):
        found.append(missing("identity", f"provider {name} is disabled", f"{gcloud(name)} --no-disabled"))
    issuer = provider.get("oidc", {}).get("issuerUri", "")
    if issuer != ISSUER:
        found.append(
            missing(
                "identity", f"provider {name} trusts issuer {issuer or 'none'}", f"{gcloud(name)} --issuer-uri={ISSUER}"
            )
        )
    mapping = provider.get("attributeMapping", {})
    if "google.subject" not in mapping:
        wanted = {"google.subject": "assertion.sub", **mapping}
        pairs = ",".join(f"{key}={value}" for key, value in wanted.items())
        found.append(
            missing(
                "identity", f"provider {name} maps no google.subject", f'{gcloud(name)} --attribute-mapping="{pairs}"'
            )
        )
    if not provider.get("attributeCondition"):
        found.append(
            missing(
                "identity", f"provider {name} has no attribute condition: it admits every repository on GitHub", fix
            )
        )
    return found


def check_identity(iam: Rest, ci: Ci, job: str, identity: CiIdentity) -> list[Finding]:
    name = identity.provider
    fix = f'{gcloud(name)} --attribute-condition="{condition_for(ci, identity)}"'
    try:
        provider = iam.get(f"v1/{name}")
    except gexc.NotFound:
        return [missing("identity", f"{job}: no workload identity provider {name}", gcloud(name, "create-oidc"))]
    except FAILED as exc:
        project = name.split("/")[1]
        return [refusal("identity", f"reading provider {name}", project, exc, "roles/iam.workloadIdentityPoolViewer")]
    found = provider_problems(provider, name, fix)
    if found:
        return found
    token = Token.of(ci, identity)
    if not admitted(provider, token):
        found.append(
            missing(
                "identity",
                f"{job}: provider {name} refuses this job's token ({token.repository}, environment "
                f"{token.environment}, {token.ref}, {token.event_name})",
                fix,
            )
        )
    for what, other in refused_tokens(ci, job, identity):
        if admitted(provider, other):
            found.append(missing("identity", f"{job}: provider {name} admits {what}", fix))
    return found or [
        passed(
            "identity",
            f"{job}: provider {name} admits {token.repository} ({token.environment}, {token.ref}, "
            f"{token.event_name}) and refuses " + ", ".join(what for what, _ in refused_tokens(ci, job, identity)),
        )
    ]


def identities(iam: Rest, environment: Environment) -> list[Finding]:
    ci = environment.gke.ci if environment.gke is not None else None
    if ci is None or (ci.deploy is None and ci.preview is None):
        return [passed("identity", f"no CI identities in [environments.{environment.name}.gke.ci]: none checked")]
    found: list[Finding] = []
    for job, identity in (("deploy", ci.deploy), ("preview", ci.preview)):
        if identity is not None:
            found += check_identity(iam, ci, job, identity)
    return found
