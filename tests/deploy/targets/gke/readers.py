"""The Google APIs `doctor` reads beside GKE and Compute (Service Usage, Resource Manager, IAM), as fakes on
loopback, and what makes a project ready for an environment there: its APIs enabled, its CI providers made with
the conditions docs/ give. Cloud (conftest.py) carries them; the doctor tests use them without a cluster."""

from __future__ import annotations

from dataclasses import dataclass

from deploy.model.environments import Environment
from deploy.targets.gke.doctor_identity import condition_for
from tests.fakes.iam import FakeIam
from tests.fakes.resource_manager import FakeResourceManager
from tests.fakes.service_usage import FakeServiceUsage

NEEDED = (
    "container.googleapis.com",
    "compute.googleapis.com",
    "artifactregistry.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "iam.googleapis.com",
    "iamcredentials.googleapis.com",
    "sts.googleapis.com",
)
NUMBER = "123456789012"  # the project number the CI providers' names carry


@dataclass
class Readers:
    service_usage: FakeServiceUsage
    resource_manager: FakeResourceManager
    iam: FakeIam

    @classmethod
    def start(cls, token: str, project: str = "my-project", accounts: tuple[str, ...] = ()) -> Readers:
        projects = (project, NUMBER)
        return cls(
            FakeServiceUsage(numbers={project: NUMBER, NUMBER: NUMBER}, projects=projects, token=token).start(),
            FakeResourceManager(projects=projects, token=token).start(),
            FakeIam(accounts=accounts, projects=projects, token=token).start(),
        )

    def ready(self, environment: Environment) -> None:
        """The project as docs/ set it up for `environment`: the APIs enabled, each CI identity's provider made
        with the condition that admits exactly its jobs."""
        assert environment.gke is not None
        self.service_usage.enable(environment.gke.project, *NEEDED)
        ci = environment.gke.ci
        for identity in (ci.deploy, ci.preview) if ci is not None else ():
            if identity is not None:
                mapping = {
                    "google.subject": "assertion.sub",
                    "attribute.repository": "assertion.repository",
                    "attribute.environment": "assertion.environment",
                }
                self.iam.add_provider(identity.provider, condition_for(ci, identity), mapping)

    def mutating_requests(self) -> list[tuple[str, str]]:
        return [request for fake in self.fakes() for request in fake.mutating_requests()]

    def fakes(self) -> tuple[FakeServiceUsage, FakeResourceManager, FakeIam]:
        return self.service_usage, self.resource_manager, self.iam

    def stop(self) -> None:
        for fake in self.fakes():
            fake.stop()
