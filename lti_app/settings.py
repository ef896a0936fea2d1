"""Typed, frozen settings: defaults.toml < {ENV}.toml < LTI_APP_* environment < overrides."""

from __future__ import annotations

import dataclasses
import os
import tomllib
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CONFIG_DIR = Path(__file__).resolve().parent.parent / "config"
ENV_PREFIX = "LTI_APP_"


class SettingsError(Exception):
    """A setting is missing or has a value of the wrong type."""


@dataclass(frozen=True)
class Settings:
    """Everything the app reads from its environment, checked once at start-up."""

    env: str = "development"
    secret_key: str = ""
    database_url: str = ""
    instance_path: str = "instance"
    log_level: str = "INFO"
    public_url: str = ""
    """The tool's own origin as the LMS sees it; empty means: from the request."""
    demo_enabled: bool = False
    demo_platform_url: str = "http://localhost:8001"
    tool_key_file: str = ""
    """A PEM private key to sign with instead of the keys kept in the database."""
    key_encryption_secret: str = ""
    """Encrypts tool private keys at rest; defaults to secret_key."""
    key_rotation_grace_days: int = 7
    http_connect_timeout: float = 5.0
    http_read_timeout: float = 15.0
    user_agent: str = "Pathways-LTI/0.1 (+https://pathways.example)"
    jwks_min_ttl: int = 300
    jwks_max_ttl: int = 86400
    jwks_default_ttl: int = 3600
    clock_skew_seconds: int = 60
    login_state_ttl: int = 600
    launch_token_ttl: int = 3600
    secure_cookies: bool = True
    admin_secret: str = ""
    """Lets an operator open the admin console without an LMS launch; empty: off."""
    registration_access_code: str = ""
    """If set, Dynamic Registration asks the LMS admin for this code first."""
    registration_private_hosts: bool = True
    """Dynamic Registration may reach an LMS on a private network (10.x, 192.168.x, loopback,
    link-local). Off in production, where the public /lti/register must not be a way into the
    school's own network; an operator whose LMS runs there turns it on."""
    forwarded_allow_ips: str = "127.0.0.1,::1"
    """Peers whose X-Forwarded-For/-Proto/-Host are believed (comma-separated, "*" for any):
    the same variable gunicorn reads. A client reaching Pathways any other way cannot change
    the URLs it tells LMSs."""

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{Path(self.instance_path).resolve() / 'pathways.sqlite3'}"

    @property
    def effective_key_secret(self) -> str:
        return self.key_encryption_secret or self.secret_key


def _coerce(name: str, raw: Any, target: Any) -> Any:
    """Turn a TOML or environment value into the field's declared type, or say why not."""
    if target is bool:
        if isinstance(raw, bool):
            return raw
        text = str(raw).strip().lower()
        if text in {"1", "true", "yes", "on"}:
            return True
        if text in {"0", "false", "no", "off"}:
            return False
        raise SettingsError(f"setting {name!r} must be true or false, got {raw!r}")
    if target in (int, float):
        if isinstance(raw, bool):
            raise SettingsError(f"setting {name!r} must be a number, got {raw!r}")
        try:
            return target(raw)
        except (TypeError, ValueError):
            raise SettingsError(f"setting {name!r} must be a number, got {raw!r}") from None
    if target is str:
        if isinstance(raw, dict | list):
            raise SettingsError(f"setting {name!r} must be text, got {raw!r}")
        return str(raw)
    raise SettingsError(f"setting {name!r} has an unsupported type")  # pragma: no cover


def _read_toml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except tomllib.TOMLDecodeError as err:
        raise SettingsError(f"{path}: {err}") from err


def load_settings(
    environ: typing.Mapping[str, str] | None = None,
    config_dir: Path | None = None,
    **overrides: Any,
) -> Settings:
    """Build Settings from files, then the environment, then keyword overrides (tests)."""
    environ = os.environ if environ is None else environ
    config_dir = (
        Path(environ.get(ENV_PREFIX + "CONFIG_DIR", ""))
        if environ.get(ENV_PREFIX + "CONFIG_DIR")
        else (config_dir or CONFIG_DIR)
    )
    env_name = overrides.get("env") or environ.get(ENV_PREFIX + "ENV", "development")
    hints = typing.get_type_hints(Settings)
    known = {f.name for f in dataclasses.fields(Settings)}

    values: dict[str, Any] = {}
    for layer in (
        _read_toml(config_dir / "defaults.toml"),
        _read_toml(config_dir / f"{env_name}.toml"),
    ):
        for key, raw in layer.items():
            if key not in known:
                raise SettingsError(f"unknown setting {key!r} in config files")
            values[key] = _coerce(key, raw, hints[key])
    for key in known:
        env_key = ENV_PREFIX + key.upper()
        if env_key in environ:
            values[key] = _coerce(env_key, environ[env_key], hints[key])
    for key, raw in overrides.items():
        if key not in known:
            raise SettingsError(f"unknown setting {key!r}")
        values[key] = raw
    values["env"] = env_name
    settings = Settings(**values)
    if not settings.secret_key:
        raise SettingsError(
            "setting 'secret_key' is required: set LTI_APP_SECRET_KEY to a long random string"
        )
    if settings.secure_cookies is False and settings.env == "production":
        raise SettingsError("setting 'secure_cookies' cannot be off in production")
    return settings
