"""What the Google API fakes share: the JSON error body of Google's REST APIs, and injected 429/500/502/503/504,
the answers Google's retry guidance says to retry with backoff
(https://cloud.google.com/storage/docs/retry-strategy; https://cloud.google.com/apis/design/errors)."""

from __future__ import annotations

from tests.fakes.server import ApiError, FakeServer, Reply

STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
REASONS = {
    400: "invalid",
    401: "authError",
    403: "forbidden",
    404: "notFound",
    409: "alreadyExists",
    429: "rateLimitExceeded",
    500: "backendError",
    502: "backendError",
    503: "backendError",
    504: "backendError",
}


def google_error(code: int, message: str, reason: str = "", metadata: dict | None = None, status: str = "") -> Reply:
    """The error envelope of googleapis.com REST: code, message, status, errors[] and an ErrorInfo detail
    (https://cloud.google.com/apis/design/errors#error_model; google.rpc.ErrorInfo's reason and metadata)."""
    error = {
        "code": code,
        "message": message,
        "status": status or STATUS[code],
        "errors": [{"message": message, "domain": "global", "reason": REASONS[code]}],
    }
    if reason:
        error["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "googleapis.com",
                **({"metadata": metadata} if metadata else {}),
            }
        ]
    return Reply(code, {"error": error})


def fail(code: int, message: str, reason: str = "", metadata: dict | None = None, status: str = "") -> ApiError:
    return ApiError(google_error(code, message, reason, metadata, status))


class GoogleFake(FakeServer):
    """Checks the bearer token, knows which projects exist, answers denied ones with 403, and a project where
    the API (`service`, e.g. container.googleapis.com) is not enabled with 403 SERVICE_DISABLED."""

    service = ""  # the API's service name
    title = ""  # its name in the console, as its SERVICE_DISABLED message says it

    def __init__(self, projects: tuple[str, ...] = ("my-project",), token: str = "google-token"):
        super().__init__()
        self.projects = set(projects)
        self.token = token
        self.denied: set[str] = set()  # permissions the credentials lack, e.g. "container.clusters.create"
        self.disabled = False  # the API is not enabled in the projects
        self.asked_permissions: list[str] = []  # what each request needed (doctor's table is held to it)

    def injected_fault(self) -> Reply:
        code = self.random.choice((429, 429, 500, 502, 503, 503, 504))
        if code == 429:
            reply = google_error(
                429,
                "Quota exceeded for quota metric 'Requests' and limit 'Requests per minute'.",
                "RATE_LIMIT_EXCEEDED",
            )
        else:
            message = {
                500: "Internal error encountered.",
                502: "Bad Gateway",
                503: "The service is currently unavailable.",
                504: "The request timed out. Please try again.",
            }[code]
            reply = google_error(code, message)
        reply.headers["Retry-After"] = self.retry_after
        return reply

    def not_routed(self, request) -> Reply:  # noqa: ANN001
        return google_error(404, f"Not found: {request.path}")

    def dispatch(self, request) -> Reply:  # noqa: ANN001
        if request.headers.get("authorization") != f"Bearer {self.token}":
            with self.lock:
                self.requests.append((request.method, request.path))
                self.queries.append(request.query)
            return google_error(
                401,
                "Request had invalid authentication credentials. Expected OAuth 2 access "
                "token, login cookie or other valid authentication credential.",
                "ACCESS_TOKEN_TYPE_UNSUPPORTED",
            )
        return super().dispatch(request)

    def check(self, project: str, permission: str) -> None:
        if permission:
            self.asked_permissions.append(permission)
        if project not in self.projects:
            raise fail(403, f"Permission denied on resource project {project}.", "CONSUMER_INVALID")
        if self.disabled:
            raise fail(
                403,
                f"{self.title} has not been used in project {project} before or it is disabled. Enable it "
                f"by visiting https://console.developers.google.com/apis/api/{self.service}/overview?"
                f"project={project} then retry.",
                "SERVICE_DISABLED",
                {"service": self.service, "consumer": f"projects/{project}"},
            )
        if permission in self.denied:
            raise fail(403, f"Required '{permission}' permission for 'projects/{project}'.", "IAM_PERMISSION_DENIED")
