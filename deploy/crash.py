"""What ends a command that the code did not expect to end: an exception that is no DeployError becomes one
line and exit 70, its traceback kept in a crash log; SIGTERM and SIGHUP stop a command as Ctrl-C does."""

from __future__ import annotations

import datetime
import os
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from deploy import __version__
from deploy.model.errors import UnexpectedError

STOPPING = (signal.SIGTERM, signal.SIGHUP)


def state_home() -> Path:
    """$XDG_STATE_HOME/k8sdeploy (default ~/.local/state/k8sdeploy): where the crash logs go."""
    return Path(os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state") / "k8sdeploy"


def crash_log(exc: BaseException, argv: Sequence[str], doing: str) -> Path:
    """Write the traceback of `exc` and what ran to a new file in the state directory; its path."""
    stamp = datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%SZ")
    directory = state_home()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = directory / f"crash-{stamp}-{os.getpid()}.log"
    text = "".join(traceback.format_exception(exc))
    path.write_text(f"k8sdeploy {__version__}: {' '.join(argv)}\nwhile {doing}\n\n{text}")
    return path


def unexpected(exc: BaseException, command: str, last_step: str) -> UnexpectedError:
    """The one-line error for an exception the code did not expect, naming the command and its last step."""
    doing = f"running `k8sdeploy {command}`" + (f" (last step: {last_step})" if last_step else "")
    try:
        where = f"the traceback is in {crash_log(exc, ['k8sdeploy', *sys.argv[1:]], doing)}"
    except OSError as failed:
        where = f"no crash log could be written ({failed.strerror})"
    reason = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else "no message"
    return UnexpectedError(
        f"unexpected {type(exc).__name__} while {doing}: {reason}",
        f"{where}; run again, and report it with that file if it happens again",
    )


def _stop(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextmanager
def threads_reported(command: Callable[[], str]) -> Iterator[None]:
    """Inside the with, an exception that ends a thread of the command is one line on stderr, its traceback in a
    crash log (threading's own hook would print the traceback)."""

    def report(args: threading.ExceptHookArgs) -> None:
        if args.exc_value is None or isinstance(args.exc_value, SystemExit):
            return
        thread = args.thread.name if args.thread is not None else "a thread"
        error = unexpected(args.exc_value, f"{command()} (in {thread})", "")
        print(f"error: {error}", file=sys.stderr, flush=True)

    before = threading.excepthook
    threading.excepthook = report
    try:
        yield
    finally:
        threading.excepthook = before


@contextmanager
def signals_stop() -> Iterator[None]:
    """Inside the with, SIGTERM and SIGHUP raise KeyboardInterrupt in the main thread, as Ctrl-C does, so a
    command stops the same way (its lease released; `dev` leaves the deployment running) -- also when it was
    started with SIGINT ignored (a script's background job). A SIGHUP ignored on purpose (nohup) stays
    ignored. Outside the main thread nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = {number: signal.getsignal(number) for number in STOPPING}
    for number in STOPPING:
        if before[number] is not signal.SIG_IGN or number == signal.SIGTERM:
            signal.signal(number, _stop)
    try:
        yield
    finally:
        for number, handler in before.items():
            signal.signal(number, handler if handler is not None else signal.SIG_DFL)
