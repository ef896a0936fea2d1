"""Launch benchmark: complete LTI launches against Pathways under gunicorn, beside a floor.

    .venv/bin/python bench/launch.py            # full run (about 5 minutes)
    .venv/bin/python bench/launch.py --quick    # a short run (about 1 minute)
    .venv/bin/python bench/launch.py --db sqlite --worker-class sync

Each launch is what a browser does, with a fresh cookie jar: GET the tool's /lti/login (302)
-> GET the platform's /auth (auto-post form with the signed id_token) -> POST the tool's
/lti/launch -> the rendered home page. Processes, all on loopback:

  - Pathways: gunicorn with config/gunicorn.conf.py, 2 workers (gthread by default), on a
    scratch PostgreSQL database (or SQLite with --db sqlite), migrated with alembic;
  - the floor: bench/floor_app.py, a Flask app doing the same HTTP steps with no LTI work,
    under the same gunicorn settings;
  - the test platform (bench/launch_platform.py: lti_app.demo in its own process), one per
    scenario: answers immediately, then 20 ms late (every answer, /auth and /jwks included);
  - this process: the load generator (asyncio, a minimal HTTP client; bench/launch_client.py).

For every scenario and concurrency it prints launches/s, p50/p95/p99 of the whole launch, the
CPU each process spent per launch, and how often the platform's JWKS was fetched. The targets
(issue item 12, at concurrency 32): >= 70% of the floor's launches/s, p99 <= 100 ms, no JWKS
fetch after the first. The numbers are for people: nothing here asserts on time.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform as pyplatform
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from launch_client import PhaseResult, run_phase

ROOT = Path(__file__).resolve().parent.parent
BENCH = Path(__file__).resolve().parent
GUNICORN_CONF = ROOT / "config" / "gunicorn.conf.py"
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
CLK_TCK = os.sysconf("SC_CLK_TCK")

JWKS_MAX_AGE = 300  # the demo platform's Cache-Control max-age on /jwks
TARGET_SHARE = 0.70
TARGET_P99_MS = 100.0


# --- machine and processes ----------------------------------------------------------------


def machine() -> dict[str, str]:
    model = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_kb = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    git = shutil.which("git") or "git"
    try:
        head = subprocess.run(
            [git, "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            [git, "status", "--porcelain", "--", "lti_app", "migrations", "config"],
            cwd=ROOT,
            capture_output=True,
            text=True,
        ).stdout.strip()
    except OSError:
        head, dirty = "unknown", ""
    return {
        "commit": head + (" + uncommitted changes in lti_app/" if dirty else ""),
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "ram": f"{mem_kb / 1024 / 1024:.1f} GiB",
        "python": pyplatform.python_version(),
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _proc_stats() -> dict[int, tuple[int, str, float]]:
    """pid -> (ppid, cmdline, cpu seconds) for every process we can read."""
    out: dict[int, tuple[int, str, float]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as fh:
                stat = fh.read().decode(errors="replace")
            with open(f"/proc/{entry.name}/cmdline", "rb") as fh:
                cmd = fh.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        rest = stat[stat.rindex(")") + 2 :].split()
        out[int(entry.name)] = (int(rest[1]), cmd, (int(rest[11]) + int(rest[12])) / CLK_TCK)
    return out


def _machine_busy() -> float:
    with open("/proc/stat") as fh:
        fields = [int(x) for x in fh.readline().split()[1:]]
    idle = fields[3] + fields[4]
    return (sum(fields[:8]) - idle) / CLK_TCK


def background_load(seconds: float = 2.0) -> float:
    """Cores busy on this machine over `seconds` (nothing of ours is running yet)."""
    before = _machine_busy()
    time.sleep(seconds)
    return (_machine_busy() - before) / seconds


def wait_quiet(limit: float, max_wait: float, seconds: float = 2.0) -> float:
    """Wait (up to max_wait s) until other processes use at most `limit` cores."""
    deadline = time.monotonic() + max_wait
    load = background_load(seconds)
    while load > limit and time.monotonic() < deadline:
        print(f"   machine busy ({load:.2f} cores used by others); waiting for it to calm down")
        time.sleep(5)
        load = background_load(seconds)
    return load


@dataclass
class CpuSnapshot:
    per_group: dict[str, float]
    busy: float


class CpuMeter:
    """CPU seconds of each group of processes (a server and its workers, our postgres)."""

    def __init__(self, roots: dict[str, int], pg_database: str | None) -> None:
        self.roots = roots
        self.pg_database = pg_database

    def snapshot(self) -> CpuSnapshot:
        stats = _proc_stats()
        children: dict[int, list[int]] = {}
        for pid, (ppid, _cmd, _cpu) in stats.items():
            children.setdefault(ppid, []).append(pid)
        groups: dict[str, float] = {}
        for name, root in self.roots.items():
            total, todo = 0.0, [root]
            while todo:
                pid = todo.pop()
                if pid in stats:
                    total += stats[pid][2]
                todo.extend(children.get(pid, []))
            groups[name] = total
        if self.pg_database:
            # Backends carry their database in their title: "postgres: user db 127.0.0.1(..)".
            groups["postgres"] = sum(
                cpu
                for _ppid, cmd, cpu in stats.values()
                if cmd.startswith("postgres:") and f" {self.pg_database} " in cmd
            )
        times = os.times()
        groups["loadgen"] = times.user + times.system
        return CpuSnapshot(groups, _machine_busy())


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[bytes]
    url: str
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_server(
    name: str, args: list[str], env: dict[str, str], logdir: Path, port: int, ready_path: str
) -> Server:
    log = logdir / f"{name}.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            args, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = Server(name, proc, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{name} exited at start; see {log}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(server.url + ready_path, timeout=5) as resp:  # noqa: S310
                resp.read()
            return server
        except urllib.error.HTTPError:
            return server  # it answers: good enough
        except OSError:
            time.sleep(0.2)
    server.stop()
    raise SystemExit(f"{name} did not start within 60 s; see {log}")


def get_json(url: str) -> object:
    with urllib.request.urlopen(url, timeout=10) as resp:  # noqa: S310 - our loopback URLs
        return json.loads(resp.read())


# --- database -------------------------------------------------------------------------------


@contextlib.contextmanager
def scratch_database(kind: str, pg_url: str, workdir: Path) -> Iterator[tuple[str, str | None]]:
    """A fresh, migrated database; yields (url, postgres database name or None)."""
    from lti_app.migrate import upgrade

    if kind == "sqlite":
        url = f"sqlite:///{workdir / 'bench.sqlite3'}"
        upgrade(url)
        yield url, None
        return
    from sqlalchemy import create_engine, text

    name = f"pathways_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = pg_url.rsplit("/", 1)[0] + "/" + name
    try:
        upgrade(url)
        yield url, name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


# --- the run --------------------------------------------------------------------------------


@dataclass
class Measured:
    result: PhaseResult
    cpu_ms: dict[str, float]
    """CPU milliseconds per launch by process group, plus 'other' (not ours)."""


@dataclass
class Row:
    scenario: str
    concurrency: int
    runs: dict[str, list[Measured]] = field(default_factory=dict)

    def merged(self, target: str) -> PhaseResult:
        parts = [m.result for m in self.runs[target]]
        return PhaseResult(
            self.concurrency,
            sum(p.elapsed for p in parts),
            [x for p in parts for x in p.latencies],
            sum(p.failures for p in parts),
            sum(p.steps for p in parts),
            next((p.first_error for p in parts if p.first_error), ""),
        )

    def cpu(self, target: str) -> dict[str, float]:
        runs = self.runs[target]
        launches = sum(m.result.launches for m in runs) or 1
        keys = runs[0].cpu_ms.keys()
        return {k: sum(m.cpu_ms[k] * m.result.launches for m in runs) / launches for k in keys}


def measure(
    meter: CpuMeter,
    server_group: str,
    urls: list[str],
    concurrency: int,
    duration: float,
    max_launches: int,
) -> Measured:
    before = meter.snapshot()
    result = asyncio.run(run_phase(urls, concurrency, duration=duration, max_launches=max_launches))
    after = meter.snapshot()
    n = max(1, result.launches)
    used = {k: after.per_group[k] - before.per_group[k] for k in after.per_group}
    ours = sum(used.values())
    cpu = {
        "server": used[server_group],
        "platform": used["platform"],
        "postgres": used.get("postgres", 0.0),
        "loadgen": used["loadgen"],
        "other": max(0.0, (after.busy - before.busy) - ours),
    }
    return Measured(result, {k: v * 1000 / n for k, v in cpu.items()})


def run(args: argparse.Namespace) -> int:
    info = machine()
    workdir = Path(tempfile.mkdtemp(prefix="pathways-bench-"))
    logdir = workdir / "logs"
    logdir.mkdir()
    servers: list[Server] = []
    rows: list[Row] = []
    jwks: dict[str, dict[str, Any]] = {}
    started = datetime.now(UTC)
    print(
        f"machine: {info['nproc']} cores, {info['cpu']}, {info['ram']} RAM, "
        f"Python {info['python']}, load {info['load']}; Pathways at {info['commit']}"
    )
    if args.wait_quiet:
        info["background"] = f"{wait_quiet(0.25, args.wait_quiet):.2f}"
    else:
        info["background"] = f"{background_load():.2f}"
    print(f"background: {info['background']} cores busy before the run")
    print(
        f"gunicorn: {args.workers} workers, {args.worker_class}"
        + (f" x {args.threads} threads" if args.worker_class == "gthread" else "")
        + f", {GUNICORN_CONF.relative_to(ROOT)}; database: {args.db}; logs: {logdir}"
    )
    try:
        with scratch_database(args.db, args.pg_url, workdir) as (db_url, pg_name):
            gunicorn = [
                sys.executable,
                "-m",
                "gunicorn",
                "-c",
                str(GUNICORN_CONF),
                "--workers",
                str(args.workers),
                "--worker-class",
                args.worker_class,
                "--threads",
                str(args.threads),
                "--backlog",
                "2048",
            ]
            env = dict(os.environ)
            tool_port, floor_port = free_port(), free_port()
            tool_env = env | {
                "LTI_APP_ENV": "development",
                "LTI_APP_SECRET_KEY": secrets.token_urlsafe(32),
                "LTI_APP_DATABASE_URL": db_url,
                "LTI_APP_SECURE_COOKIES": "false",
                "LTI_APP_INSTANCE_PATH": str(workdir / "instance"),
                "LTI_APP_LOG_LEVEL": "INFO",  # as in production
                "LTI_APP_DEMO_ENABLED": "false",
            }
            tool_app = (
                ["--pythonpath", str(BENCH), "bound_app:app"]
                if args.tool_app == "bound"
                else ["lti_app:create_app()"]
            )
            tool = start_server(
                "tool",
                [*gunicorn, "--bind", f"127.0.0.1:{tool_port}", *tool_app],
                tool_env,
                logdir,
                tool_port,
                "/lti/jwks",
            )
            servers.append(tool)
            floor = start_server(
                "floor",
                [
                    *gunicorn,
                    "--bind",
                    f"127.0.0.1:{floor_port}",
                    "--pythonpath",
                    str(BENCH),
                    "floor_app:app",
                ],
                env,
                logdir,
                floor_port,
                "/hello",
            )
            servers.append(floor)
            for delay in args.delays:
                scenario = f"platform +{delay} ms"
                port = free_port()
                plat = start_server(
                    f"platform-{delay}ms",
                    [
                        sys.executable,
                        str(BENCH / "launch_platform.py"),
                        "--port",
                        str(port),
                        "--tool",
                        tool.url,
                        "--floor",
                        floor.url,
                        "--delay-ms",
                        str(delay),
                        "--db-url",
                        db_url,
                        "--workers",
                        str(args.platform_workers),
                    ],
                    env,
                    logdir,
                    port,
                    "/bench/ready",
                )
                servers.append(plat)
                meter = CpuMeter(
                    {"tool": tool.proc.pid, "floor": floor.proc.pid, "platform": plat.proc.pid},
                    pg_name,
                )
                urls = get_json(plat.url + "/bench/login_urls")
                assert isinstance(urls, dict)
                counters = f"{plat.url}/bench/counters"
                # The first launch ever from this platform: the one that may fetch its JWKS.
                first = asyncio.run(run_phase(urls["tool"], 1, duration=60, max_launches=1))
                if first.failures:
                    raise SystemExit(f"the first launch failed: {first.first_error}")
                after_first = get_json(counters)
                assert isinstance(after_first, dict)
                # Warm up both servers' workers, pools and templates.
                for target in ("tool", "floor"):
                    asyncio.run(
                        run_phase(urls[target], 8, duration=args.warmup, max_launches=10_000)
                    )
                print(
                    f"\n== {scenario}: first launch {first.latencies[0] * 1000:.0f} ms, "
                    f"JWKS fetches after it: {after_first['jwks_fetches']}"
                )
                for concurrency in args.concurrency:
                    row = Row(scenario, concurrency, {"floor": [], "tool": []})
                    for rnd in range(args.rounds):
                        order = ("floor", "tool") if rnd % 2 == 0 else ("tool", "floor")
                        for target in order:
                            if args.wait_quiet:
                                wait_quiet(0.25, args.wait_quiet, seconds=1.0)
                            m = measure(
                                meter,
                                target,
                                urls[target],
                                concurrency,
                                args.duration,
                                args.max_launches,
                            )
                            row.runs[target].append(m)
                            r = m.result
                            print(
                                f"   C={concurrency:<3} {target:<5} {r.rate:7.1f} launches/s  "
                                f"p50 {r.pct(50):6.1f}  p95 {r.pct(95):6.1f}  "
                                f"p99 {r.pct(99):6.1f} ms  n={r.launches} "
                                f"fail={r.failures}"
                                + (f"  [{r.first_error[:160]}]" if r.first_error else "")
                            )
                    rows.append(row)
                end = get_json(counters)
                assert isinstance(end, dict)
                times = [float(t) for t in end["jwks_fetch_times"]]
                first_fetch = times[0] if times else 0.0
                later = [t - first_fetch for t in times[1:]]
                jwks[scenario] = {
                    "total": int(end["jwks_fetches"]),
                    "after_first": int(end["jwks_fetches"]) - int(after_first["jwks_fetches"]),
                    # Fetches while the first answer was still fresh (its max-age).
                    "within_max_age": sum(t < JWKS_MAX_AGE for t in later),
                    "later_at": ", ".join(f"{t:.0f}" for t in later),
                    "span": round(time.time() - first_fetch) if times else 0,
                    "auth": int(end["auth_requests"]),
                }
                plat.stop()
                servers.remove(plat)
    finally:
        for server in servers:
            server.stop()
        tool_log = logdir / "tool.log"
        if tool_log.exists():
            lines = tool_log.read_text(errors="replace").splitlines()
            info["tool_errors"] = str(sum(" ERROR " in line for line in lines))
            info["tool_warnings"] = str(sum(" WARNING " in line for line in lines))
        if not args.keep_logs:
            shutil.rmtree(workdir, ignore_errors=True)
    print_report(args, info, started, rows, jwks)
    return 0


def cpu_share(row: Row) -> float:
    """Floor CPU per launch over Pathways' (server, platform, postgres, load generator)."""
    ours = ("server", "platform", "postgres", "loadgen")
    floor = sum(row.cpu("floor")[k] for k in ours)
    tool = sum(row.cpu("tool")[k] for k in ours)
    return floor / tool if tool else float("nan")


def print_report(
    args: argparse.Namespace,
    info: dict[str, str],
    started: datetime,
    rows: list[Row],
    jwks: dict[str, dict[str, Any]],
) -> None:
    cmd = " ".join(["python", "bench/launch.py", *sys.argv[1:]])
    print(f"\n## Launch — {started:%Y-%m-%d %H:%M} UTC\n")
    print(f"Command: `{cmd}`  ")
    print(
        f"Machine: {info['nproc']} cores ({info['cpu']}), {info['ram']} RAM, "
        f"Python {info['python']}; load average at start {info['load']}, "
        f"{info['background']} cores busy with other work just before  "
    )
    print(f"Code: {info['commit']}  ")
    if args.tool_app == "bound":
        print("Measured in place of Pathways: bench/bound_app.py (see its docstring)  ")
    print(
        f"Pathways: gunicorn {args.workers} workers {args.worker_class}"
        + (f" x {args.threads} threads" if args.worker_class == "gthread" else "")
        + f", database {args.db}; platform: {args.platform_workers} gunicorn workers; "
        f"{args.duration:g} s per measurement x {args.rounds} round(s), floor and tool "
        "alternating; Pathways log: "
        f"{info.get('tool_errors', '?')} ERROR, {info.get('tool_warnings', '?')} WARNING lines\n"
    )
    print(
        "| scenario | C | floor launches/s | Pathways launches/s | share | share by CPU | "
        "Pathways p50 / p95 / p99 ms | floor p99 ms | failures |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        f, t = row.merged("floor"), row.merged("tool")
        share = t.rate / f.rate if f.rate else float("nan")
        print(
            f"| {row.scenario} | {row.concurrency} | {f.rate:.0f} | {t.rate:.0f} | "
            f"{share:.0%} | {cpu_share(row):.0%} | "
            f"{t.pct(50):.1f} / {t.pct(95):.1f} / {t.pct(99):.1f} | "
            f"{f.pct(99):.1f} | {t.failures + f.failures} |"
        )
    print(
        "\nshare by CPU: the floor's CPU per launch (all our processes) over Pathways'; what the "
        "share would be if both were CPU-bound on the same cores. It is what other work on the "
        "machine disturbs least."
    )
    print(
        "\nCPU per launch (ms) by process; 'other': CPU of processes not in the run, per launch\n"
    )
    print(
        "| scenario | C | target | server | platform | postgres | loadgen | other | "
        "platform cores busy | others' cores |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        for target in ("floor", "tool"):
            c = row.cpu(target)
            rate = row.merged(target).rate
            print(
                f"| {row.scenario} | {row.concurrency} | {target} | {c['server']:.2f} | "
                f"{c['platform']:.2f} | {c['postgres']:.2f} | {c['loadgen']:.2f} | "
                f"{c['other']:.2f} | {c['platform'] * rate / 1000:.2f} | "
                f"{c['other'] * rate / 1000:.2f} |"
            )
    print("\nPlatform JWKS fetches:\n")
    for scenario, counts in jwks.items():
        refetches = (
            f" (at {counts['later_at']} s after the first; the platform allows caching "
            f"{JWKS_MAX_AGE} s, so {counts['within_max_age']} while the keys were fresh)"
            if counts["total"] > 1
            else ""
        )
        print(
            f"- {scenario}: {counts['total']} in all over {counts['span']} s and "
            f"{counts['auth']} launches, {counts['after_first']} after the first launch" + refetches
        )
    print("\nTargets at C=32:\n")
    for row in rows:
        if row.concurrency != 32:
            continue
        f, t = row.merged("floor"), row.merged("tool")
        share = t.rate / f.rate if f.rate else 0.0
        fresh = jwks.get(row.scenario, {}).get("within_max_age", -1)
        checks = [
            (f"{share:.0%} of the floor (>= {TARGET_SHARE:.0%})", share >= TARGET_SHARE),
            (f"p99 {t.pct(99):.1f} ms (<= {TARGET_P99_MS:.0f})", t.pct(99) <= TARGET_P99_MS),
            (f"{fresh} JWKS fetches after the first while cacheable (0)", fresh == 0),
            (f"{t.failures} failed launches (0)", t.failures == 0),
        ]
        text = "; ".join(f"{label} {'met' if ok else 'NOT met'}" for label, ok in checks)
        others = max(row.cpu(x)["other"] * row.merged(x).rate / 1000 for x in ("floor", "tool"))
        if others > 0.25:
            text += f" (other processes used up to {others:.2f} cores meanwhile: noisy)"
        print(f"- {row.scenario}: {text}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="short measurements, one round")
    parser.add_argument("--db", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--pg-url", default=os.environ.get("BENCH_PG_URL", DEFAULT_PG))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-class", choices=("gthread", "sync"), default="gthread")
    parser.add_argument("--threads", type=int, default=4, help="per gthread worker")
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated")
    parser.add_argument("--delays", default="0,20", help="platform delays in ms, comma-separated")
    parser.add_argument("--duration", type=float, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, help="floor/tool measurements per concurrency")
    parser.add_argument("--max-launches", type=int, default=100_000, help="per measurement")
    parser.add_argument("--platform-workers", type=int, default=2)
    parser.add_argument(
        "--wait-quiet",
        type=float,
        default=0,
        metavar="SECONDS",
        help="first wait up to this long for other processes to leave the CPUs idle",
    )
    parser.add_argument(
        "--tool-app",
        choices=("pathways", "bound"),
        default="pathways",
        help="bound: bench/bound_app.py (a launch's unavoidable work only) in place of Pathways",
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the servers' logs")
    args = parser.parse_args()
    args.concurrency = [int(x) for x in args.concurrency.split(",") if x]
    args.delays = [int(x) for x in args.delays.split(",") if x]
    args.duration = args.duration or (3.0 if args.quick else 10.0)
    args.rounds = args.rounds or (1 if args.quick else 2)
    args.warmup = 1.0 if args.quick else 3.0
    # Stop the servers and drop the scratch database on `kill` too, not only on Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return run(args)


if __name__ == "__main__":
    raise SystemExit(main())
