"""Put config/ and migrations/, kept at the repository's root (DESIGN.md), into the wheel.

A wheel holds packages only, so a non-editable install (`pip install .`, a wheel, a container
image) would lack the settings files, the migrations and gunicorn's settings. The build copies
them into lti_app/_bundled/, where lti_app.settings.shipped_folder looks first; an editable
install reads the repository's own. Everything else is configured in pyproject.toml.
"""

from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = {
    "config": ("*.toml", "*.py", ".env.example"),
    "migrations": ("*.py", "*.mako", "versions/*.py"),
}
"""What of each root folder the wheel carries (MANIFEST.in lists the same for the sdist)."""


class BuildPyWithRootFolders(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:
            return
        for folder, patterns in SHIPPED.items():
            if not (ROOT / folder).is_dir():  # an sdist made without MANIFEST.in
                raise FileNotFoundError(f"{folder}/ is missing: Pathways cannot run without it")
            for pattern in patterns:
                for source in sorted((ROOT / folder).glob(pattern)):
                    target = Path(self.build_lib, "lti_app", "_bundled", source.relative_to(ROOT))
                    self.mkpath(str(target.parent))
                    self.copy_file(str(source), str(target))


setup(cmdclass={"build_py": BuildPyWithRootFolders})
