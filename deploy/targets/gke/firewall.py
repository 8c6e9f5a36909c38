"""Our Compute firewall rule: the gateway's ports from the configured ranges to our node tag, nothing more.

Compute's writes answer an Operation; the change lands when it is DONE and not at all when it ends with errors
(https://cloud.google.com/compute/docs/reference/rest/v1/globalOperations;
https://cloud.google.com/compute/docs/api/how-tos/api-requests-responses#handling_api_responses), so every
write is followed to DONE and its errors raised. Inserts and patches carry a `requestId`: Compute applies a
request once however often it is sent (https://cloud.google.com/compute/docs/reference/rest/v1/firewalls/insert
`requestId`), so a retried one whose first answer was lost is safe."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable

from google.api_core import exceptions as gexc
from google.cloud import compute_v1

from deploy.model.changes import ObjectChange, compare
from deploy.model.errors import CloudError, ConfigError
from deploy.model.progress import Say, silent
from deploy.targets.gke.cloud import RETRY, Deadline, Place, calling

PREFIX = "k8sdeploy-"  # every rule k8sdeploy makes starts so
READ = "compute.firewalls.get"  # the permission current() needs
KIND = "compute#firewall"


def shape(rule: compute_v1.Firewall) -> dict:
    """The fields of a rule that k8sdeploy sets and compares."""
    return {
        "allowed": [{"IPProtocol": a.I_p_protocol, "ports": list(a.ports)} for a in rule.allowed],
        "sourceRanges": sorted(rule.source_ranges),
        "targetTags": list(rule.target_tags),
    }


def firewall_name(place: Place) -> str:
    return f"{PREFIX}{place.gke.cluster}-{place.env_name}-gateway"


class Firewall:
    def __init__(
        self,
        firewalls: compute_v1.FirewallsClient,
        operations: compute_v1.GlobalOperationsClient,
        networks: compute_v1.NetworksClient,
        place: Place,
        tag: str,
        say: Say = silent,
        poll: float = 2.0,
    ):
        self.firewalls = firewalls
        self.operations = operations
        self.networks = networks
        self.place = place
        self.project = place.gke.project
        self.name = firewall_name(place)
        self.tag = tag
        self.say = say
        self.poll = poll

    def desired(self, ports: Iterable[int]) -> compute_v1.Firewall:
        return compute_v1.Firewall(
            name=self.name,
            network=f"global/networks/{self.place.gke.network}",
            direction="INGRESS",
            description=f"k8sdeploy: the gateway of environment {self.place.env_name}",
            allowed=[compute_v1.Allowed(I_p_protocol="tcp", ports=[str(p) for p in sorted(set(ports))])],
            source_ranges=list(self.place.gke.source_ranges),
            target_tags=[self.tag],
        )

    def change(self, ports: Iterable[int]) -> ObjectChange:
        """What ensure() would do to the rule, with the fields that change; reads only. An identity without
        compute.firewalls.get (the preview's may lack it: docs/targets.md) gets the rule named as not compared."""
        want = shape(self.desired(ports))
        try:
            have = self.current(may_be_denied=True)
        except _Denied:
            return ObjectChange(KIND, self.name, "unknown", note=f"not compared: no permission {READ}")
        if have is None:
            return ObjectChange(KIND, self.name, "create", tuple(compare({}, want)))
        fields = tuple(compare(shape(have), want))
        return ObjectChange(KIND, self.name, "update" if fields else "unchanged", fields)

    def current(self, may_be_denied: bool = False) -> compute_v1.Firewall | None:
        """The rule, None when there is none; `may_be_denied`: _Denied when the caller lacks READ (a disabled API
        or an unknown project stays the error `calling` makes of it)."""
        with calling(f"reading firewall rule {self.name}", self.place):
            try:
                return self.firewalls.get(project=self.project, firewall=self.name, retry=RETRY)
            except gexc.NotFound:
                return None
            except gexc.Forbidden as exc:
                if may_be_denied and exc.reason not in ("SERVICE_DISABLED", "CONSUMER_INVALID"):
                    raise _Denied() from None
                raise

    def check_network(self) -> None:
        """Stop (ConfigError) when the environment's network is not in the project: projects under the
        compute.skipDefaultNetworkCreation policy have no `default`."""
        network = self.place.gke.network
        with calling(f"looking for network {network}", self.place):
            try:
                self.networks.get(project=self.project, network=network, retry=RETRY)
            except gexc.NotFound:
                raise ConfigError(
                    f"project {self.project} has no VPC network {network!r}",
                    f"set network in {self.place.table} to one of its networks (gcloud compute networks list "
                    f"--project {self.project})",
                ) from None

    def ensure(self, ports: Iterable[int], tries: int = 30) -> str:
        """Create or update the rule to match; 'created', 'updated' or 'unchanged'."""
        want, have = self.desired(ports), self.current()
        what = f"opening the gateway's ports in firewall rule {self.name}"
        request_id = str(uuid.uuid4())  # the same on each retry of this one write
        with calling(what, self.place):
            if have is None:
                try:
                    operation = self.firewalls.insert_unary(
                        compute_v1.InsertFirewallRequest(
                            project=self.project, firewall_resource=want, request_id=request_id
                        ),
                        retry=RETRY,
                    )
                except gexc.Conflict:  # another insert (another run's) is under way: wait until it lands
                    if tries <= 0:
                        raise
                    self.say(f"firewall rule {self.name} is being created elsewhere; waiting for it")
                    time.sleep(self.poll)
                    return self.ensure(ports, tries - 1)
                outcome = "created"
            elif shape(have) != shape(want):
                operation = self.firewalls.patch_unary(
                    compute_v1.PatchFirewallRequest(
                        project=self.project, firewall=self.name, firewall_resource=want, request_id=request_id
                    ),
                    retry=RETRY,
                )
                outcome = "updated"
            else:
                return "unchanged"
        self.wait(operation, what)
        self.say(f"{outcome} firewall rule {self.name}: tcp {','.join(want.allowed[0].ports)} to tag {self.tag}")
        return outcome

    def delete(self) -> bool:
        if self.current() is None:  # look first: a second `down` sends no write at all
            return False
        what = f"deleting firewall rule {self.name}"
        with calling(what, self.place):
            try:
                operation = self.firewalls.delete_unary(project=self.project, firewall=self.name, retry=RETRY)
            except gexc.NotFound:  # gone since it was read: a retried delete whose first answer was lost
                operation = None
        if operation is not None:
            self.wait(operation, what)
        self.say(f"deleted firewall rule {self.name}")
        return True

    def wait(self, operation: compute_v1.Operation, what: str) -> None:
        deadline = Deadline(f"{what} (operation {operation.name})", self.place)
        while operation.status != compute_v1.Operation.Status.DONE:
            deadline.sleep(self.poll)
            with calling(what, self.place):
                operation = self.operations.get(project=self.project, operation=operation.name, retry=RETRY)
        if operation.error.errors:
            messages = "; ".join(e.message for e in operation.error.errors)
            raise CloudError(
                f"{what} failed: {messages}",
                f"fix that (quota, permissions, {self.place.table}) and run again; operation {operation.name}",
            )


class _Denied(Exception):
    """The caller may not read the rule (403 without a reason of the project or the API)."""
