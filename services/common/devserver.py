"""`k8sdeploy dev`'s process in a service's container: it imports the libraries once, runs the service in a
forked child, and on SIGHUP starts a new child, which imports the service's code as it is now (a start in a
fraction of a second instead of importing FastAPI, SQLAlchemy and Alembic again). When the child exits by
itself, a crash at start-up say, this process exits with its code, so the container shows the crash.

    python3 -m services.common.devserver person
"""

from __future__ import annotations

import importlib
import os
import runpy
import signal
import sys
import traceback

# The services' libraries (requirements/app.in), imported before the first fork and shared by every child.
PRELOADED = ("fastapi", "starlette", "pydantic", "uvicorn", "sqlalchemy", "alembic", "httpx", "jinja2", "pymysql")


def start(service: str) -> int:
    """A child running `python3 -m services.SERVICE`; its process id."""
    pid = os.fork()
    if pid:
        return pid
    for number in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
        signal.signal(number, signal.SIG_DFL)
    try:
        runpy.run_module(f"services.{service}", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        os._exit(exc.code if isinstance(exc.code, int) else 1)
    except BaseException:  # noqa: BLE001 - the child reports any failure as its exit code, as python3 -m would
        traceback.print_exc()
        sys.stderr.flush()
        os._exit(1)
    os._exit(0)


def main(argv: list[str]) -> None:
    service = argv[1]
    for name in PRELOADED:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    state = {"child": start(service), "restarting": False}

    def restart(_number: int, _frame: object) -> None:
        state["restarting"] = True
        os.kill(state["child"], signal.SIGKILL)

    def stop(_number: int, _frame: object) -> None:
        os.kill(state["child"], signal.SIGTERM)
        os.waitpid(state["child"], 0)
        sys.exit(0)

    signal.signal(signal.SIGHUP, restart)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        _, status = os.waitpid(state["child"], 0)
        if state["restarting"]:
            state["restarting"] = False
            state["child"] = start(service)
            continue
        sys.exit(os.waitstatus_to_exitcode(status) or 1)


if __name__ == "__main__":
    main(sys.argv)
