"""A fake of the Service Usage API's services.batchGet, on loopback: which APIs a project has enabled.

Follows https://cloud.google.com/service-usage/docs/reference/rest/v1/services/batchGet:
`GET /v1/projects/PROJECT/services:batchGet?names=projects/PROJECT/services/NAME&names=...` answers
`{"services": [Service]}` in the order asked, each `{"name": "projects/NUMBER/services/NAME", "parent":
"projects/NUMBER", "config": {"name": NAME, "title": ...}, "state": "ENABLED" | "DISABLED"}` (the parent by the
project's number, https://cloud.google.com/service-usage/docs/reference/rest/v1/services#Service). At most 30
names a request, each under the request's parent, else 400 INVALID_ARGUMENT; a name that is no service, 403
("Not found or permission denied for service(s)"); the caller needs serviceusage.services.get (403); an unknown
project 403; the Service Usage API itself disabled, 403 SERVICE_DISABLED. Reads only: nothing is enabled here.
"""

from __future__ import annotations

from tests.fakes.google import GoogleFake, fail
from tests.fakes.server import Reply, Request

TITLES = {
    "container.googleapis.com": "Kubernetes Engine API",
    "compute.googleapis.com": "Compute Engine API",
    "artifactregistry.googleapis.com": "Artifact Registry API",
    "cloudresourcemanager.googleapis.com": "Cloud Resource Manager API",
    "iam.googleapis.com": "Identity and Access Management (IAM) API",
    "iamcredentials.googleapis.com": "IAM Service Account Credentials API",
    "sts.googleapis.com": "Security Token Service API",
    "serviceusage.googleapis.com": "Service Usage API",
    "logging.googleapis.com": "Cloud Logging API",
    "monitoring.googleapis.com": "Cloud Monitoring API",
}
MAX_NAMES = 30


class FakeServiceUsage(GoogleFake):
    service, title = "serviceusage.googleapis.com", "Service Usage API"

    def __init__(self, numbers: dict[str, str] | None = None, **kwargs):
        super().__init__(**kwargs)
        self.numbers = numbers or {project: str(100000000000 + i) for i, project in enumerate(sorted(self.projects))}
        self.enabled: dict[str, set[str]] = {project: set() for project in self.projects}  # project -> services
        self.route("GET", r"/v1/projects/(?P<project>[^/:]+)/services:batchGet", self.batch_get)

    def enable(self, project: str, *services: str) -> None:
        """What `gcloud services enable` would have done before the test (the fake itself takes no writes)."""
        self.enabled.setdefault(project, set()).update(services)

    def batch_get(self, request: Request) -> Reply:
        project = request.params["project"]
        self.check(project, "serviceusage.services.get")
        names = request.repeated.get("names", [])
        if not names or len(names) > MAX_NAMES:
            raise fail(400, f"Request contains an invalid argument: between 1 and {MAX_NAMES} names are allowed.")
        services = []
        for name in names:
            parent, _, service = name.rpartition("/services/")
            if parent not in (f"projects/{project}", f"projects/{self.numbers[project]}"):
                raise fail(400, f"Invalid resource name: {name} is not under projects/{project}.")
            if service not in TITLES:
                raise fail(403, f"Not found or permission denied for service(s): {service}.")
            number = self.numbers[project]
            services.append(
                {
                    "name": f"projects/{number}/services/{service}",
                    "parent": f"projects/{number}",
                    "config": {"name": service, "title": TITLES[service]},
                    "state": "ENABLED" if service in self.enabled.get(project, set()) else "DISABLED",
                }
            )
        return Reply(200, {"services": services})
