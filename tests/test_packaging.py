"""A school's IT installs Pathways without the repository: `pip install .`, a wheel or a
container image built from one. Such an install once lacked the settings files, the migrations,
gunicorn's settings and the translations (they were read from beside the package, where only a
checkout has them), so it could not even upgrade its database in production."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import httpx
import pytest

from lti_app import migrate

ROOT = Path(__file__).resolve().parents[1]
CHECKOUT_JUNK = shutil.ignore_patterns(
    ".git",
    ".venv",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    ".hypothesis",
    "__pycache__",
    "*.pyc",
    "*.egg-info",
    "build",
    "dist",
    "artifacts",
    "instance",
    "_bundled",
    "*.sqlite3",
)
SECRET = "a-production-secret-of-forty-characters!"


def _run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(  # noqa: S603 - our own build and our own lti-app
        [str(arg) for arg in args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"{args}:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Pathways built as `python -m build` does (an sdist, then a wheel from the sdist) and
    installed into a folder of its own; nothing is downloaded."""
    if importlib.util.find_spec("setuptools.command.bdist_wheel") is None:
        pytest.fail(
            "building a wheel needs setuptools>=70.1 (the test extra): scripts/bootstrap.sh"
        )
    work = tmp_path_factory.mktemp("packaging")
    # A clean copy of the checkout: a build in place leaves build/ and egg-info behind, and
    # reads them again the next time.
    source = work / "checkout"
    shutil.copytree(ROOT, source, ignore=CHECKOUT_JUNK)
    sdist_build = f"from setuptools import build_meta; build_meta.build_sdist({str(work)!r})"
    output = _run(sys.executable, "-c", sdist_build, cwd=source)
    (sdist,) = work.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        archive.extractall(work / "sdist", filter="data")
    (unpacked,) = (work / "sdist").iterdir()
    pip = (sys.executable, "-m", "pip", "--disable-pip-version-check")
    wheels = work / "wheels"
    output += _run(
        *pip,
        "wheel",
        "--no-deps",
        "--no-index",
        "--no-build-isolation",
        "-w",
        wheels,
        unpacked,
        cwd=work,
    )
    # setuptools once printed some 750 lines of "Package would be ignored" here.
    assert "Warning" not in output, output
    (wheel,) = wheels.glob("*.whl")
    site = work / "site"
    _run(*pip, "install", "--no-deps", "--no-index", "--target", site, wheel, cwd=work)
    return site


def _production(site: Path, place: Path, **variables: str) -> dict[str, str]:
    """A production server's environment: this machine's, without the test run's LTI_APP_*."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LTI_APP_")}
    env.update(
        PYTHONPATH=str(site),
        LTI_APP_ENV="production",
        LTI_APP_SECRET_KEY=SECRET,
        LTI_APP_DATABASE_URL=f"sqlite:///{place / 'pathways.sqlite3'}",
        LTI_APP_INSTANCE_PATH=str(place / "instance"),
    )
    return {**env, **variables}


def test_a_wheel_install_upgrades_a_production_database(installed: Path, tmp_path: Path) -> None:
    out = _run(
        installed / "bin" / "lti-app",
        "db",
        "upgrade",
        cwd=tmp_path,
        env=_production(installed, tmp_path),
    )
    assert f"database at {migrate.resolve_revision('head')}" in out


def test_a_wheel_install_writes_spanish_family_reports(installed: Path, tmp_path: Path) -> None:
    spanish = (
        "import lti_app\n"
        "from flask import g\n"
        "from lti_app.reports.i18n import band_meaning\n"
        "print(lti_app.__file__)\n"
        "with lti_app.create_app().test_request_context():\n"
        "    g.report_language = 'es'\n"
        "    print(band_meaning('none'))\n"
    )
    out = _run(sys.executable, "-c", spanish, cwd=tmp_path, env=_production(installed, tmp_path))
    where, words = out.splitlines()[:2]
    assert Path(where).is_relative_to(installed), "the test ran the checkout, not the wheel"
    assert words == "Todavía no se ha evaluado ningún trabajo sobre esto."


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_a_wheel_install_serves_with_pathways_gunicorn_settings(
    installed: Path, tmp_path: Path
) -> None:
    """Without config/gunicorn.conf.py, `serve` ran on gunicorn's defaults: no access log, one
    worker, a proxy's X-Forwarded-* headers and long login hints refused."""
    lti_app = installed / "bin" / "lti-app"
    env = _production(installed, tmp_path)
    _run(lti_app, "db", "upgrade", cwd=tmp_path, env=env)
    port = _free_port()
    server = subprocess.Popen(  # noqa: S603 - our own lti-app, fixed arguments
        [str(lti_app), "serve", "--bind", f"127.0.0.1:{port}", "--workers", "1"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        answer = None
        for _ in range(300):
            if server.poll() is not None:
                break
            try:
                answer = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
                break
            except httpx.TransportError:
                time.sleep(0.1)
    finally:
        if server.poll() is None:
            os.killpg(server.pid, 15)
        out, err = server.communicate(timeout=60)
    assert answer is not None, err
    assert answer.status_code == 200
    # The access log, and its request ids, are config/gunicorn.conf.py's.
    access = [line for line in out.splitlines() if '"GET /healthz" 200' in line]
    assert access, out
    assert access[0].endswith(f"rid={answer.headers['X-Request-Id']}"), out
