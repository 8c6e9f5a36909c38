"""A fake of the IAM API's workload identity providers (get) and service accounts' testIamPermissions, on
loopback.

Providers follow https://cloud.google.com/iam/docs/reference/rest/v1/projects.locations.workloadIdentityPools.providers
(get: `GET /v1/projects/NUMBER/locations/global/workloadIdentityPools/POOL/providers/ID`): the resource with
`state` (ACTIVE, or DELETED for the 30 days a deleted provider can be undeleted, during which get still answers
it), `disabled`, `attributeMapping`, `attributeCondition` and `oidc` (`issuerUri`, `allowedAudiences`); a
missing one 404 NOT_FOUND ("Requested entity was not found."); the caller needs
iam.workloadIdentityPoolProviders.get (403). `add_provider` stands for the provider made before the test, by
create's rules (https://cloud.google.com/iam/docs/reference/rest/v1/projects.locations.workloadIdentityPools.providers/create):
an OIDC provider's mapping must map google.subject (else 400), the condition is optional (none: every token of
the issuer is admitted).

Service accounts' testIamPermissions follows
https://cloud.google.com/iam/docs/reference/rest/v1/projects.serviceAccounts/testIamPermissions
(`POST /v1/projects/-/serviceAccounts/EMAIL:testIamPermissions`): the subset held, no field when none; an
account that does not exist 404. The caller may act as every account but those in `act_as_denied`. Both are
reads: `mutating_requests` leaves the POST out.
"""

from __future__ import annotations

import copy

from tests.fakes.google import GoogleFake, fail
from tests.fakes.server import Reply, Request

PROVIDER = r"/v1/(?P<name>projects/(?P<project>[0-9]+)/locations/global/workloadIdentityPools/[^/]+/providers/[^/:]+)"
ISSUER = "https://token.actions.githubusercontent.com"


class FakeIam(GoogleFake):
    service, title = "iam.googleapis.com", "Identity and Access Management (IAM) API"

    def __init__(self, accounts: tuple[str, ...] = (), **kwargs):
        super().__init__(**kwargs)
        self.providers: dict[str, dict] = {}  # resource name -> provider
        self.accounts = set(accounts)
        self.act_as_denied: set[str] = set()
        self.route("GET", PROVIDER, self.get_provider)
        self.route("POST", r"/v1/projects/-/serviceAccounts/(?P<account>[^/:]+):testIamPermissions", self.test_account)

    def mutating_requests(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p in super().mutating_requests() if not p.endswith(":testIamPermissions")]

    def add_provider(self, name: str, condition: str = "", mapping: dict | None = None, **fields: object) -> dict:
        mapping = {"google.subject": "assertion.sub"} if mapping is None else mapping
        if "google.subject" not in mapping:
            raise ValueError("create refuses an OIDC provider whose attributeMapping lacks google.subject (400)")
        self.providers[name] = {
            "name": name,
            "state": "ACTIVE",
            "disabled": False,
            "attributeMapping": dict(mapping),
            **({"attributeCondition": condition} if condition else {}),
            "oidc": {"issuerUri": ISSUER},
            **fields,
        }
        return self.providers[name]

    def get_provider(self, request: Request) -> Reply:
        self.check(request.params["project"], "iam.workloadIdentityPoolProviders.get")
        found = self.providers.get(request.params["name"])
        if found is None:
            raise fail(404, "Requested entity was not found.")
        return Reply(200, copy.deepcopy(found))

    def test_account(self, request: Request) -> Reply:
        account = request.params["account"]
        if account not in self.accounts:
            raise fail(404, f"Service account projects/-/serviceAccounts/{account} does not exist.")
        asked = request.json().get("permissions", [])
        held = [p for p in asked if not (p == "iam.serviceAccounts.actAs" and account in self.act_as_denied)]
        return Reply(200, {"permissions": held} if held else {})
