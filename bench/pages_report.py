"""Machine facts and the "Pages" section of bench/RESULTS.md for bench/pages.py."""

from __future__ import annotations

import os
import platform
import re
from datetime import UTC, datetime
from pathlib import Path

SECTION = "## Pages"


def machine_info() -> str:
    """nproc, CPU model, RAM and Python, read from /proc where there is one."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    model = platform.processor() or "unknown CPU"
    ram = "unknown RAM"
    cpuinfo, meminfo = Path("/proc/cpuinfo"), Path("/proc/meminfo")
    if cpuinfo.exists():
        found = re.search(r"^model name\s*:\s*(.+)$", cpuinfo.read_text(), re.MULTILINE)
        model = found.group(1).strip() if found else model
    if meminfo.exists():
        found = re.search(r"^MemTotal:\s*(\d+) kB", meminfo.read_text(), re.MULTILINE)
        ram = f"{int(found.group(1)) / 1024 / 1024:.1f} GiB RAM" if found else ram
    return f"nproc {cpus}, {model}, {ram}, Python {platform.python_version()}"


def write_results(
    path: Path,
    *,
    command: str,
    machine: str,
    database: str,
    dataset: str,
    build: str,
    table: str,
    verdicts: list[str],
) -> None:
    """Replace (or add) the Pages section, keeping every other section as it is."""
    body = "\n".join(
        [
            SECTION,
            "",
            f"- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            f"- Machine: {machine}",
            f"- Database: {database}",
            f"- Command: `{command}`",
            f"- Dataset: {dataset}",
            f"- Build: {build}",
            "- Server time: in-process Flask test client, perf_counter around each GET "
            "(warm-up first); statements counted with a before_cursor_execute listener on the "
            "app's engine.",
            "",
            table,
            "",
            "Targets:",
            "",
            *verdicts,
            "",
        ]
    )
    text = path.read_text() if path.exists() else "# Benchmark results\n\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.MULTILINE | re.DOTALL)
    if pattern.search(text):
        text = pattern.sub(lambda _m: body + "\n", text, count=1)
    else:
        text = text.rstrip("\n") + "\n\n" + body
    path.write_text(text.rstrip("\n") + "\n")
