"""Benchmark (not a test): an honest client's login latency through the gateway while N other clients flood wrong
passwords for the same account, before and after (a git ref against this working tree), side by side in one run.

    .venv/bin/python bench/login_flood_bench.py                 # or `make bench-login`; about 8 minutes on 2 cores
    .venv/bin/python bench/login_flood_bench.py --logins 5      # a quick look
    BENCH_BASE=HEAD~3 .venv/bin/python bench/login_flood_bench.py

"Before" is a detached `git worktree` of BENCH_BASE (or --base; default 898652a, before the login-fairness work) in
a temporary directory, removed at the end; "after" is this checkout's working tree as it is, uncommitted changes
included. Each tree runs its own suite from source (`python -m deploy.loopback`: the five services and nginx with
the gateway's config, the demo users seeded, SQLite) on a free block of loopback ports and a work directory of its
own, as a child process of this virtualenv's Python with the tree as its working directory and PYTHONPATH. One tree
at a time: its suite is stopped (its process group) before the next one starts, so the two never share the CPU.

For each tree, in order:

1. the returning browser (source address 127.0.2.1) logs in once as admin@test.com and logs out, keeping its
   cookie jar (whatever cookies the tree sets: a device cookie if it has them; no cookie name is looked at);
2. no flood: the returning browser and a new browser (127.0.2.2, its cookie jar emptied before every login) each
   log in LOGINS times, one after another, the two series side by side;
3. the flood: FLOODERS clients, each from its own address (127.0.1.K), each with CONCURRENCY wrong-password
   logins for admin@test.com in flight at a time (password wrong-K-i), from a process of their own (so that their
   work does not hold this one's interpreter while it times the honest logins); after WARMUP seconds, the two
   honest series of step 2 again, the flood running until both have ended.

An honest login is POST /login with the right password and `Origin: <gateway>` (as a browser sends it), timed to
its answer (no redirect followed); a 302 to / is a success, and is followed by POST /logout (not timed). An honest
series starts its logins at least INTERVAL seconds apart (default: the gateway's login rate, 3 s at 20r/m), so its
own address never exceeds the gateway's per-address limit (limit_req) and every 429 it sees comes from the flood.
p50 and p95 are over every attempt of a series (a refusal is an answer too: read them with ok/attempts); p95 is the
nearest rank (the slowest of fewer than 20).

Prints one table (markdown). The services' logs are under each tree's work directory (--work-dir keeps them).
"""

from __future__ import annotations

import argparse
import asyncio
import math
import multiprocessing
import os
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from deploy.loopback import SuiteSettings  # noqa: E402
from deploy.model.suite import DEMO_USERS, suite_ports  # noqa: E402
from deploy.render.gateway import retry_after  # noqa: E402
from deploy.targets.local.containers import port_is_free  # noqa: E402

if TYPE_CHECKING:
    from multiprocessing.queues import Queue
    from multiprocessing.synchronize import Event

BASE = os.environ.get("BENCH_BASE", "898652a")
ADMIN = DEMO_USERS[0]  # admin@test.com / admin
RETURNING, NEW = "returning browser", "new browser"
HONEST_ADDRESSES = {RETURNING: "127.0.2.1", NEW: "127.0.2.2"}
TIMEOUT = 60.0  # seconds, every request
START_TIMEOUT = 180.0  # the suite's start, the services' migrations included
# the gateway's per-address login rate as the suite from source runs it: the honest series' default spacing
INTERVAL = float(retry_after(SuiteSettings(work_dir=Path()).login_rate))


class BenchFailure(Exception):
    """A tree's run did not happen as designed; the message is one line (the details go to stderr first)."""


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def free_base_port(taken: set[int], start: int = 27100, end: int = 28100) -> int:
    """A gateway port whose services' ports (suite_ports) are free too, none of them in `taken`."""
    for base in range(start, end, 10):
        ports = set(suite_ports(base).values())
        if not ports & taken and all(port_is_free(port) for port in ports):
            return base
    raise SystemExit(f"no free block of {len(suite_ports())} ports between {start} and {end}")


# -- one tree's suite --------------------------------------------------------------------------------------------
@dataclass
class Tree:
    label: str
    path: Path
    work: Path
    base_port: int
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.base_port}"

    @property
    def log(self) -> Path:
        return self.work / "loopback.log"

    def start(self) -> None:
        """`python -m deploy.loopback` of this tree, in a session of its own (its group is its and its children's)."""
        self.work.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "PYTHONPATH": str(self.path), "PYTHONUNBUFFERED": "1"}
        env.pop("SUITE_MYSQL_URL", None)  # SQLite in the work dir: two trees never share a database
        command = [sys.executable, "-m", "deploy.loopback", "--port", str(self.base_port), "--work-dir", str(self.work)]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self.path,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        say(f"{self.label}: suite starting at {self.url} (pid {self.process.pid}, logs in {self.work})")
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.fail(f"the suite did not start (it exited {self.process.returncode})", self.log)
            try:
                if httpx.get(f"{self.url}/login", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.fail(f"the suite's gateway did not answer within {START_TIMEOUT:.0f} s", self.log)

    def fail(self, what: str, log: Path) -> NoReturn:
        """The last lines of `log` to stderr, then a one-line BenchFailure naming this tree."""
        say(f"{self.label}: the last lines of {log}:")
        for line in tail(log).splitlines():
            say(f"    {line}")
        raise BenchFailure(f"{self.label}: {what}")

    def stop(self) -> None:
        """SIGTERM to the loopback process (it stops its services and nginx), then whatever is left of its process
        group; by its pid, nothing else."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 5.0)):
            if not group_alive(process.pid):
                break
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                break
            deadline = time.monotonic() + wait
            while group_alive(process.pid) and time.monotonic() < deadline:
                process.poll()  # reaps the leader if it is the one left
                time.sleep(0.1)
        if process.poll() is None:
            process.kill()
            process.wait()
        say(f"{self.label}: suite stopped")

    def log_notes(self) -> list[str]:
        """What the suite's logs hold that is worth a look: tracebacks and error lines, per log. nginx logs each
        request limit_req refuses at level error ("limiting requests"): the flood's own 429s, not counted."""
        notes = []
        for log in sorted([self.log, *(self.work / "logs").glob("*.log")]):
            if not log.exists():
                continue
            text = log.read_text(errors="replace")
            tracebacks = text.count("Traceback (most recent call last)")
            errors = sum(
                1
                for line in text.splitlines()
                if (" ERROR" in line or "[error]" in line or "[crit]" in line) and "limiting requests" not in line
            )
            if tracebacks or errors:
                notes.append(f"{log.name}: {tracebacks} tracebacks, {errors} error lines")
        return notes


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


# -- the flood, in a process of its own ---------------------------------------------------------------------------
def flood_process(
    url: str, flooders: int, concurrency: int, stop: Event, started: Event, results: Queue[dict[str, int]]
) -> None:
    """FLOODERS clients, each from 127.0.1.K with CONCURRENCY wrong-password logins in flight, until `stop` is set;
    puts the count of answers by status (and of errors by kind) on `results`. Ctrl-C reaches this process too (the
    terminal's process group): it is left to the parent, which stops this one through `stop`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    counts: Counter[str] = asyncio.run(flood(url, flooders, concurrency, stop, started))
    results.put(dict(counts))


async def flood(url: str, flooders: int, concurrency: int, stop: Event, started: Event) -> Counter[str]:
    counts: Counter[str] = Counter()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    clients = [
        httpx.AsyncClient(
            base_url=url,
            transport=httpx.AsyncHTTPTransport(local_address=f"127.0.1.{k}", limits=limits),
            timeout=TIMEOUT,
            follow_redirects=False,
        )
        for k in range(1, flooders + 1)
    ]
    attempts = [0] * flooders

    async def one(k: int) -> None:
        client = clients[k]
        while True:
            attempts[k] += 1
            password = f"wrong-{k + 1}-{attempts[k]}"
            try:
                answer = await client.post("/login", data={"emailaddress": ADMIN.email, "password": password})
                counts[str(answer.status_code)] += 1
            except httpx.HTTPError as exc:
                counts[f"error: {type(exc).__name__}"] += 1
                await asyncio.sleep(0.05)  # a refused connection does not spin

    workers = [asyncio.create_task(one(k)) for k in range(flooders) for _ in range(concurrency)]
    started.set()
    while not stop.is_set():
        await asyncio.sleep(0.1)
    for worker in workers:
        worker.cancel()  # requests still in flight are not counted
    await asyncio.gather(*workers, return_exceptions=True)
    for client in clients:
        await client.aclose()
    return counts


class Flood:
    def __init__(self, url: str, flooders: int, concurrency: int):
        context = multiprocessing.get_context("spawn")
        self.stop_event, self.started, self.results = context.Event(), context.Event(), context.Queue()
        self.process = context.Process(
            target=flood_process,
            args=(url, flooders, concurrency, self.stop_event, self.started, self.results),
            daemon=True,
        )

    def __enter__(self) -> Flood:
        self.process.start()
        if not self.started.wait(60):
            self.__exit__()
            raise BenchFailure("the flood's process did not start within 60 s")
        return self

    def counts(self) -> Counter[str]:
        """Stops the flood: its answers by status."""
        self.stop_event.set()
        try:
            return Counter(self.results.get(timeout=TIMEOUT + 10))
        except queue.Empty:
            raise BenchFailure("the flood's process did not report its counts") from None
        finally:
            self.process.join(10)

    def __exit__(self, *_exc: object) -> None:
        self.stop_event.set()
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()


# -- the honest client ----------------------------------------------------------------------------------------
@dataclass
class Series:
    seconds: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    ok: int = 0

    @property
    def attempts(self) -> int:
        return len(self.seconds)


class Browser:
    """One browser from its own source address; `fresh` empties its cookie jar before each login (a new browser
    every time), else the jar is kept from one login to the next."""

    def __init__(self, url: str, address: str, fresh: bool):
        self.url, self.fresh = url, fresh
        self.http = httpx.Client(
            base_url=url,
            transport=httpx.HTTPTransport(local_address=address),
            timeout=TIMEOUT,
            follow_redirects=False,
        )

    def login(self, series: Series | None = None) -> bool:
        if self.fresh:
            self.http.cookies.clear()
        form = {"emailaddress": ADMIN.email, "password": ADMIN.password}
        started = time.perf_counter()
        try:
            answer = self.http.post("/login", data=form, headers={"Origin": self.url})
            status = str(answer.status_code)
            ok = answer.status_code == 302 and answer.headers.get("location") == "/"
        except httpx.HTTPError as exc:
            status, ok = f"error: {type(exc).__name__}", False
        elapsed = time.perf_counter() - started
        if series is not None:
            series.seconds.append(elapsed)
            series.statuses[status] += 1
            series.ok += ok
        if ok:
            self.logout()
        return ok

    def logout(self) -> None:
        try:
            self.http.post("/logout", headers={"Origin": self.url})
        except httpx.HTTPError:
            pass  # the next login is judged as it comes

    def series(self, logins: int, interval: float) -> Series:
        series = Series()
        start = time.monotonic()
        for number in range(logins):
            time.sleep(max(0.0, start + number * interval - time.monotonic()))
            self.login(series)
        return series

    def close(self) -> None:
        self.http.close()


def honest_series(browsers: dict[str, Browser], logins: int, interval: float) -> dict[str, Series]:
    """Both honest browsers' series, side by side."""
    with ThreadPoolExecutor(len(browsers)) as pool:
        futures = {name: pool.submit(browser.series, logins, interval) for name, browser in browsers.items()}
        return {name: future.result() for name, future in futures.items()}


@dataclass
class Row:
    tree: str
    series: str
    flooders: int
    honest: Series
    flood: Counter[str] | None


def scenario(tree: Tree, args: argparse.Namespace) -> list[Row]:
    browsers = {
        RETURNING: Browser(tree.url, HONEST_ADDRESSES[RETURNING], fresh=False),
        NEW: Browser(tree.url, HONEST_ADDRESSES[NEW], fresh=True),
    }
    try:
        if not browsers[RETURNING].login():
            tree.fail(f"the first login as {ADMIN.email} failed", tree.work / "logs" / "authentication.log")
        rows = []
        say(f"{tree.label}: {args.logins} logins per honest series, no flood")
        for name, series in honest_series(browsers, args.logins, args.interval).items():
            rows.append(Row(tree.label, name, 0, series, None))
        say(f"{tree.label}: the flood ({args.flooders} clients x {args.concurrency}), then the same logins")
        with Flood(tree.url, args.flooders, args.concurrency) as flood:
            time.sleep(args.warmup)
            flooded = honest_series(browsers, args.logins, args.interval)
            counts = flood.counts()
        for name, series in flooded.items():
            rows.append(Row(tree.label, name, args.flooders, series, counts))
        return rows
    finally:
        for browser in browsers.values():
            browser.close()


# -- the table ---------------------------------------------------------------------------------------------------
def percentile(values: list[float], fraction: float) -> float:
    """Nearest rank."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(fraction * len(ordered)) - 1)]


def flood_cell(counts: Counter[str]) -> str:
    main = "/".join(str(counts.get(status, 0)) for status in ("401", "429", "503"))
    others = sorted((status, n) for status, n in counts.items() if status not in ("401", "429", "503"))
    return main + (f" (+ {', '.join(f'{status}: {n}' for status, n in others)})" if others else "")


def table(rows: list[Row]) -> str:
    lines = [
        "| tree | series | flood clients | honest p50 ms | honest p95 ms | honest ok/attempts | honest 429 "
        "| honest 503 | flood attempts | flood 401/429/503 |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        honest = row.honest
        ms = [seconds * 1000 for seconds in honest.seconds]
        p50 = f"{statistics.median(ms):.0f}" if ms else "-"
        p95 = f"{percentile(ms, 0.95):.0f}" if ms else "-"
        other = sorted((s, n) for s, n in honest.statuses.items() if s not in ("302", "429", "503"))
        ok = f"{honest.ok}/{honest.attempts}" + (f" ({', '.join(f'{s}: {n}' for s, n in other)})" if other else "")
        flood = (str(sum(row.flood.values())), flood_cell(row.flood)) if row.flood is not None else ("-", "-")
        lines.append(
            f"| {row.tree} | {row.series} | {row.flooders} | {p50} | {p95} | {ok} | {honest.statuses.get('429', 0)} "
            f"| {honest.statuses.get('503', 0)} | {flood[0]} | {flood[1]} |"
        )
    return "\n".join(lines)


# -- the run -----------------------------------------------------------------------------------------------------
def git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"git {' '.join(args)} failed (exit {done.returncode}):\n{done.stderr[-2000:]}")
    return done.stdout.strip()


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="login_flood_bench.py",
        description="An honest client's login latency through the gateway while other clients flood wrong "
        "passwords, before (a git ref) and after (this working tree), side by side; prints one table.",
    )
    parser.add_argument("--base", default=BASE, help="git ref of 'before' (env BENCH_BASE; default %(default)s)")
    parser.add_argument("--flooders", type=int, default=6, help="flood clients, each its own address (%(default)s)")
    parser.add_argument("--concurrency", type=int, default=4, help="logins in flight per flood client (%(default)s)")
    parser.add_argument("--logins", type=int, default=20, help="logins per honest series (%(default)s)")
    parser.add_argument(
        "--interval",
        type=float,
        default=INTERVAL,
        help="seconds between the starts of an honest series' logins (default %(default)s: the gateway's login rate)",
    )
    parser.add_argument(
        "--warmup", type=float, default=5.0, help="seconds of flood before the honest logins (%(default)s)"
    )
    parser.add_argument("--work-dir", type=Path, help="keep the suites' work directories (logs) here")
    args = parser.parse_args(argv)
    if not 1 <= args.flooders <= 254 or args.concurrency < 1 or args.logins < 1 or args.interval < 0 or args.warmup < 0:
        parser.error("--flooders 1-254, --concurrency and --logins at least 1, --interval and --warmup not negative")
    return args


def stop_on_sigterm() -> None:
    """SIGTERM (a timeout, `kill PID`) ends the run as Ctrl-C does, through the `finally`s: the running suite's
    group is stopped and the worktree removed. A second one while that happens is ignored."""

    def stop(signum: int, _frame: object) -> None:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise SystemExit(f"login_flood_bench: stopped by signal {signum}")

    signal.signal(signal.SIGTERM, stop)


def remove_worktree(path: Path) -> None:
    done = subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(path)], capture_output=True, text=True
    )
    if done.returncode != 0:
        say(f"git worktree remove {path} failed ({done.stderr.strip()}); `git worktree prune` forgets it")


def main(argv: list[str] | None = None) -> None:
    args = arguments(argv)
    stop_on_sigterm()
    commit = git("rev-parse", "--short", f"{args.base}^{{commit}}")
    head = git("rev-parse", "--short", "HEAD")
    dirty = " + changes" if git("status", "--porcelain", "--untracked-files=no") else ""
    if args.work_dir:  # a suite's SQLite databases (lockouts, devices) must not carry over from an earlier run
        used = [args.work_dir / name for name in ("before", "after") if (args.work_dir / name).exists()]
        if used:
            raise SystemExit(f"login_flood_bench: {', '.join(map(str, used))} exists: give a new --work-dir")
    rows: list[Row] = []
    notes: dict[str, list[str]] = {}
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="k8sdeploy-login-bench-") as temporary:
        work = args.work_dir.resolve() if args.work_dir else Path(temporary)
        before = Path(temporary) / "before"
        git("worktree", "add", "--detach", "--quiet", str(before), commit)
        try:
            taken: set[int] = set()
            for label, path, name in ((f"before {commit}", before, "before"), (f"after {head}{dirty}", ROOT, "after")):
                base_port = free_base_port(taken)
                taken |= set(suite_ports(base_port).values())
                tree = Tree(label, path, work / name, base_port)
                try:
                    tree.start()
                    rows += scenario(tree, args)
                except BenchFailure as failure:  # the other tree still runs: its rows are worth having
                    failures.append(str(failure))
                finally:
                    tree.stop()  # before the next tree starts: never two suites at once
                notes[label] = tree.log_notes()
        finally:
            remove_worktree(before)
    if rows:
        print(
            f"{args.flooders} flood clients x {args.concurrency} in flight, {args.logins} honest logins per series "
            f"{args.interval:g} s apart, {args.warmup:g} s of flood first; {os.cpu_count()} cores\n"
        )
        print(table(rows), flush=True)
    for label, found in notes.items():
        for note in found:
            say(f"{label}: {note}")
    if args.work_dir:
        say(f"logs kept in {work}")
    if failures:
        raise SystemExit("\n".join(f"login_flood_bench: {failure}" for failure in failures))


if __name__ == "__main__":
    main()
