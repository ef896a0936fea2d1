"""Typed, frozen settings: defaults.toml < {ENV}.toml < LTI_APP_* environment < overrides."""

from __future__ import annotations

import dataclasses
import difflib
import ipaddress
import math
import os
import tomllib
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lti_app.timezones import zone_named


def shipped_folder(name: str) -> Path:
    """A folder kept at the repository's root (config/, migrations/) wherever it is installed.

    A wheel can carry only packages, so the build copies these into lti_app/_bundled/ (setup.py);
    a checkout or an editable install reads the repository's own.
    """
    package = Path(__file__).resolve().parent
    bundled = package / "_bundled" / name
    return bundled if bundled.is_dir() else package.parent / name


CONFIG_DIR = shipped_folder("config")
ENV_PREFIX = "LTI_APP_"

OTHER_VARIABLES = frozenset(
    {
        "CONFIG_DIR",  # where the TOML files are (read here, not a setting)
        "BIND",  # config/gunicorn.conf.py
        "WORKERS",
        "THREADS",
        "TEST_DATABASE_URL",  # the test suite and .ci/run
        "REQUIRE_POSTGRES",
        "REQUIRE_BROWSER",
        "LAYOUT_SCREENSHOTS",
    }
)
"""LTI_APP_* variables that other parts of Pathways read: not settings, and not typos."""

SECRET_FIELDS = frozenset({"secret_key", "key_encryption_secret", "admin_secret"})
"""Kept exactly as given: trimming a secret would change the keys it already encrypted."""

PRODUCTION_SECRET_MIN_LENGTH = 32
ADMIN_SECRET_MIN_LENGTH = 16
EXAMPLE_SECRET = "change-me-to-64-random-characters"  # noqa: S105 - config/.env.example
EXAMPLE_KEY_SECRET = "another-long-random-string"  # noqa: S105 - config/.env.example

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

DAY = 86400
NUMBER_BOUNDS: dict[str, tuple[float, float]] = {
    "key_rotation_grace_days": (0, 365),
    "http_connect_timeout": (0.1, 600),
    "http_read_timeout": (0.1, 600),
    "jwks_min_ttl": (0, 365 * DAY),
    "jwks_max_ttl": (0, 365 * DAY),
    "jwks_default_ttl": (0, 365 * DAY),
    # LTI 1.3 / the issue: a leeway of at most 5 minutes for platform clocks.
    "clock_skew_seconds": (0, 300),
    "login_state_ttl": (10, DAY),
    "launch_token_ttl": (60, 7 * DAY),
    # Up to the operator session's own 8-hour lifetime (admin.views.OPERATOR_SESSION_SECONDS).
    "admin_idle_minutes": (1, 8 * 60),
}
"""Inclusive ranges: a negative TTL or a timeout of a century is a typo, not a choice."""

DATABASE_DRIVERS = {
    "sqlite": "sqlite",
    "sqlite+pysqlite": "sqlite+pysqlite",
    "postgresql+psycopg": "postgresql+psycopg",
    # What people write: psycopg 3 is the driver Pathways ships, so these mean it.
    "postgresql": "postgresql+psycopg",
    "postgres": "postgresql+psycopg",
}


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
    tool_next_key_file: str = ""
    """The PEM key the next rotation of LTI_APP_TOOL_KEY_FILE will swap in: published now,
    never used to sign, so that platforms' cached key sets hold it before it signs."""
    tool_previous_key_file: str = ""
    """The PEM key LTI_APP_TOOL_KEY_FILE held before a rotation: still published (never used
    to sign) so that what it signed just before the swap verifies; empty once platforms have
    caught up."""
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
    admin_idle_minutes: int = 30
    """An operator who has done nothing in the console for this long must sign in again."""
    registration_access_code: str = ""
    """If set, Dynamic Registration asks the LMS admin for this code first."""
    registration_private_hosts: bool = True
    """Dynamic Registration may reach an LMS on a private network (10.x, 192.168.x, loopback,
    link-local), and Pathways may then call that LMS's services there. Off in production,
    where the public /lti/register must not be a way into the school's own network (platforms
    registered by hand are reached wherever the operator named); an operator whose LMS runs
    there turns it on."""
    default_timezone: str = "UTC"
    """The school's time zone (an IANA name such as America/Chicago): what a course's dates
    are in until its teacher chooses one or the LMS sends one (Canvas sends each user's)."""
    forwarded_allow_ips: str = "127.0.0.1,::1"
    """Peers whose X-Forwarded-For/-Proto/-Host are believed (addresses or networks,
    comma-separated, "*" for any):
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
            number = target(raw.strip() if isinstance(raw, str) else raw)
        except (TypeError, ValueError, OverflowError):
            kind = "a whole number" if target is int else "a number"
            raise SettingsError(f"setting {name!r} must be {kind}, got {raw!r}") from None
        if isinstance(number, float) and not math.isfinite(number):
            raise SettingsError(f"setting {name!r} must be a finite number, got {raw!r}")
        return number
    if target is str:
        if isinstance(raw, dict | list):
            raise SettingsError(f"setting {name!r} must be text, got {raw!r}")
        return str(raw)
    raise SettingsError(f"setting {name!r} has an unsupported type")  # pragma: no cover


def _env_key(key: str) -> str:
    return ENV_PREFIX + key.upper()


def _check_unknown_variables(environ: typing.Mapping[str, str], known: set[str]) -> None:
    """A typo such as LTI_APP_SECERT_KEY must not be silently ignored."""
    names = {_env_key(k) for k in known} | {ENV_PREFIX + o for o in OTHER_VARIABLES}
    for var in sorted(environ):
        if var.startswith(ENV_PREFIX) and var not in names:
            close = difflib.get_close_matches(var, sorted(names), n=1, cutoff=0.75)
            hint = f"; did you mean {close[0]}?" if close else ""
            raise SettingsError(f"unknown setting {var!r} in the environment{hint}")


def _check_ranges(values: dict[str, Any]) -> None:
    for key, (low, high) in NUMBER_BOUNDS.items():
        value = values.get(key)
        if value is not None and not low <= value <= high:
            raise SettingsError(
                f"setting {_env_key(key)!r} must be between {low:g} and {high:g}, got {value!r}"
            )
    if values.get("jwks_min_ttl", 0) > values.get("jwks_max_ttl", 365 * DAY):
        raise SettingsError(
            "setting 'LTI_APP_JWKS_MIN_TTL' must not be larger than 'LTI_APP_JWKS_MAX_TTL'"
        )


def _check_url(key: str, value: str) -> None:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:  # also an unclosed [ of an IPv6 address
        parts = None
    if (
        parts is None
        or parts.scheme not in {"http", "https"}
        or not parts.hostname
        or any(c.isspace() for c in value)
    ):
        raise SettingsError(
            f"setting {_env_key(key)!r} must be an http(s) address such as "
            f"https://pathways.example.edu, got {value!r}"
        )


def _check_public_url(value: str) -> None:
    # Every address handed to LMSs is this origin plus a route at the root (addresses.tool_origin),
    # so https://apps.school.edu/pathways would give Canvas https://apps.school.edu/lti/login.
    parts = urlsplit(value)
    if parts.path not in {"", "/"} or parts.query or parts.fragment:
        raise SettingsError(
            f"setting {_env_key('public_url')!r} must be a scheme and host name only, such as "
            f"https://pathways.example.edu, got {value!r}: Pathways cannot be served under a "
            "path; serve it at the root of its own host name"
        )


def normalise_database_url(value: str) -> str:
    """Check the URL's driver now: a typo must not surface as a traceback at first query."""
    scheme, sep, rest = value.partition("://")
    driver = DATABASE_DRIVERS.get(scheme.lower()) if sep else None
    if driver is None:
        shown = f"{scheme!r}" if sep else "no scheme"
        raise SettingsError(
            f"setting 'LTI_APP_DATABASE_URL' has {shown}; use postgresql+psycopg://user@host/db "
            "or sqlite:////absolute/path/pathways.sqlite3"
        )
    return f"{driver}://{rest}"


ProxyNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_forwarded_allow_ips(value: str) -> tuple[ProxyNetwork, ...] | None:
    """The proxies named by LTI_APP_FORWARDED_ALLOW_IPS: addresses or networks, comma-separated,
    as gunicorn reads the same variable (`lti-app serve`); None for "*", any peer.

    A network such as 10.0.0.0/16 is how a load balancer whose addresses change is named;
    gunicorn accepts one (gunicorn/config.py, validate_string_to_addr_list), so Pathways must
    too, or the two disagree about the scheme and host and Pathways hands LMSs its internal
    address. A value neither can read stops start-up instead of trusting nobody in silence.
    """
    parts = [part.strip() for part in value.split(",") if part.strip()]
    if "*" in parts:
        return None
    networks: list[ProxyNetwork] = []
    for part in parts:
        try:
            networks.append(ipaddress.ip_network(part))
        except ValueError:
            raise SettingsError(
                "setting 'LTI_APP_FORWARDED_ALLOW_IPS' must list addresses or networks "
                f"separated by commas (such as 10.0.0.5,10.1.0.0/16) or be *, got {part!r}"
            ) from None
    return tuple(networks)


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
    named_dir = environ.get(ENV_PREFIX + "CONFIG_DIR")
    config_dir = Path(named_dir) if named_dir else (config_dir or CONFIG_DIR)
    explicit_env = (overrides.get("env") or environ.get(ENV_PREFIX + "ENV", "")).strip()
    env_name = explicit_env or "development"
    hints = typing.get_type_hints(Settings)
    known = {f.name for f in dataclasses.fields(Settings)}
    _check_unknown_variables(environ, known)
    env_file = config_dir / f"{env_name}.toml"
    if explicit_env and not env_file.is_file():
        have = sorted(p.stem for p in config_dir.glob("*.toml") if p.stem != "defaults")
        raise SettingsError(
            f"setting 'LTI_APP_ENV' is {env_name!r} but there is no {env_file}; "
            f"environments here: {', '.join(have) or 'none'}"
        )

    values: dict[str, Any] = {}
    for layer in (_read_toml(config_dir / "defaults.toml"), _read_toml(env_file)):
        for key, raw in layer.items():
            if key not in known:
                raise SettingsError(f"unknown setting {key!r} in config files")
            values[key] = _coerce(key, raw, hints[key])
    for key in known:
        env_key = ENV_PREFIX + key.upper()
        if env_key in environ:
            raw = environ[env_key]
            if hints[key] is str and key not in SECRET_FIELDS:
                raw = raw.strip()  # "KEY= value " in an env file
            values[key] = _coerce(env_key, raw, hints[key])
    for key, raw in overrides.items():
        if key not in known:
            raise SettingsError(f"unknown setting {key!r}")
        values[key] = raw
    values["env"] = env_name
    _check_ranges(values)
    level = str(values.get("log_level", "INFO")).strip().upper()
    if level not in LOG_LEVELS:
        raise SettingsError(
            f"setting 'LTI_APP_LOG_LEVEL' must be one of {', '.join(LOG_LEVELS)}, "
            f"got {values.get('log_level')!r}"
        )
    values["log_level"] = level
    if "default_timezone" in values:
        zone = zone_named(values["default_timezone"])
        if zone is None:
            raise SettingsError(
                "setting 'LTI_APP_DEFAULT_TIMEZONE' must be an IANA time zone name such as "
                f"America/Chicago, Europe/Madrid or UTC, got {values['default_timezone']!r}"
            )
        values["default_timezone"] = zone.key
    if values.get("database_url"):
        values["database_url"] = normalise_database_url(values["database_url"])
    parse_forwarded_allow_ips(str(values.get("forwarded_allow_ips", "")))
    for key in ("public_url", "demo_platform_url"):
        if values.get(key):
            _check_url(key, values[key])
    if values.get("public_url"):
        _check_public_url(values["public_url"])
    settings = Settings(**values)
    if not settings.secret_key.strip():
        raise SettingsError(
            "setting 'secret_key' is required: set LTI_APP_SECRET_KEY to a long random string"
        )
    if settings.env == "production":
        if settings.secret_key == EXAMPLE_SECRET or (
            len(settings.secret_key) < PRODUCTION_SECRET_MIN_LENGTH
        ):
            raise SettingsError(
                f"setting 'LTI_APP_SECRET_KEY' must be at least {PRODUCTION_SECRET_MIN_LENGTH} "
                "random characters in production, not the example's "
                "(python -c 'import secrets; print(secrets.token_urlsafe(48))')"
            )
        if settings.key_encryption_secret.strip() in {EXAMPLE_KEY_SECRET, EXAMPLE_SECRET}:
            # Copied from config/.env.example, which anyone can read: the tool's private keys
            # would be encrypted at rest with a published secret.
            raise SettingsError(
                "setting 'LTI_APP_KEY_ENCRYPTION_SECRET' is the example's from "
                "config/.env.example: set a long random one of your own (or remove the line "
                "to use LTI_APP_SECRET_KEY)"
            )
        if settings.admin_secret and len(settings.admin_secret) < ADMIN_SECRET_MIN_LENGTH:
            # Ten wrong guesses lock one address out for 15 minutes; many addresses guessing
            # a short secret would still find it.
            raise SettingsError(
                f"setting 'LTI_APP_ADMIN_SECRET' must be at least {ADMIN_SECRET_MIN_LENGTH} "
                "characters in production (or empty to turn the operator console off)"
            )
        if settings.public_url and urlsplit(settings.public_url).scheme != "https":
            raise SettingsError("setting 'LTI_APP_PUBLIC_URL' must be https:// in production")
        if not settings.database_url:
            # The default SQLite file lies in the instance folder, found from the directory a
            # command runs in: `db upgrade` in one and the server in another would use two
            # databases without a word.
            raise SettingsError(
                "setting 'LTI_APP_DATABASE_URL' is required in production: your PostgreSQL "
                "database (postgresql://user@host/name), or sqlite:////absolute/path.sqlite3 "
                "to keep one SQLite file"
            )
        if settings.secure_cookies is False:
            raise SettingsError("setting 'secure_cookies' cannot be off in production")
    return settings
