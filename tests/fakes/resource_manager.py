"""A fake of the Resource Manager API's projects.testIamPermissions, on loopback: which permissions the caller
holds on a project.

Follows https://cloud.google.com/resource-manager/reference/rest/v1/projects/testIamPermissions:
`POST /v1/projects/PROJECT:testIamPermissions` with `{"permissions": [...]}` answers `{"permissions": [...]}`,
the subset the caller holds, in the order asked, and no field at all when it holds none (proto3 JSON leaves an
empty list out). "There are no permissions required for making this API call": a caller holding nothing gets an
empty answer, not a 403. Permissions with wildcards ("*", "storage.*") are refused with 400 INVALID_ARGUMENT
(TestIamPermissionsRequest.permissions), as are names not of the form service.resource.verb; a project that
does not exist, or that the caller cannot see, 403 PERMISSION_DENIED; the API disabled, 403 SERVICE_DISABLED.
The caller holds every permission but those in `denied`. The request is a POST and changes nothing: it is no
write (`mutating_requests` leaves it out).
"""

from __future__ import annotations

import re

from tests.fakes.google import GoogleFake, fail
from tests.fakes.server import Reply, Request

PERMISSION = re.compile(r"^[a-z][a-zA-Z0-9]*\.[a-zA-Z][a-zA-Z0-9]*\.[a-zA-Z][a-zA-Z0-9]*$")
READ_ONLY = ":testIamPermissions"


class FakeResourceManager(GoogleFake):
    service, title = "cloudresourcemanager.googleapis.com", "Cloud Resource Manager API"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.asked: list[list[str]] = []  # each request's permissions, as sent
        self.route("POST", r"/v1/projects/(?P<project>[^/:]+):testIamPermissions", self.test_permissions)

    def mutating_requests(self) -> list[tuple[str, str]]:
        return [(method, path) for method, path in super().mutating_requests() if not path.endswith(READ_ONLY)]

    def test_permissions(self, request: Request) -> Reply:
        project = request.params["project"]
        if project not in self.projects:
            raise fail(403, "The caller does not have permission")
        self.check(project, "")
        asked = request.json().get("permissions", [])
        for permission in asked:
            if "*" in permission or not PERMISSION.match(permission):
                raise fail(400, f"Invalid permission: {permission}. Permissions with wildcards are not allowed.")
        self.asked.append(list(asked))
        held = [permission for permission in asked if permission not in self.denied]
        return Reply(200, {"permissions": held} if held else {})
