from pathlib import Path

import pytest

from lti_app.settings import SettingsError, load_settings


def write(folder: Path, name: str, text: str) -> None:
    (folder / name).write_text(text, encoding="utf-8")


def test_layers_apply_in_order_defaults_then_env_file_then_environment(tmp_path: Path) -> None:
    write(tmp_path, "defaults.toml", 'log_level = "INFO"\njwks_min_ttl = 10\n')
    write(tmp_path, "staging.toml", 'log_level = "DEBUG"\njwks_min_ttl = 20\n')
    settings = load_settings(
        {"LTI_APP_ENV": "staging", "LTI_APP_SECRET_KEY": "s", "LTI_APP_JWKS_MIN_TTL": "30"},
        config_dir=tmp_path,
    )
    assert settings.env == "staging"
    assert settings.log_level == "DEBUG"
    assert settings.jwks_min_ttl == 30


def test_bad_number_stops_start_up_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="LTI_APP_CLOCK_SKEW_SECONDS"):
        load_settings(
            {"LTI_APP_SECRET_KEY": "s", "LTI_APP_CLOCK_SKEW_SECONDS": "soon"}, config_dir=tmp_path
        )


def test_bad_boolean_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="LTI_APP_DEMO_ENABLED"):
        load_settings(
            {"LTI_APP_SECRET_KEY": "s", "LTI_APP_DEMO_ENABLED": "maybe"}, config_dir=tmp_path
        )


def test_unknown_key_in_a_file_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "defaults.toml", "jwks_ttl_typo = 5\n")
    with pytest.raises(SettingsError, match="jwks_ttl_typo"):
        load_settings({"LTI_APP_SECRET_KEY": "s"}, config_dir=tmp_path)


def test_missing_secret_key_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="LTI_APP_SECRET_KEY"):
        load_settings({}, config_dir=tmp_path)


def test_default_database_is_sqlite_in_the_instance_folder(tmp_path: Path) -> None:
    settings = load_settings(
        {"LTI_APP_SECRET_KEY": "s", "LTI_APP_INSTANCE_PATH": str(tmp_path)}, config_dir=tmp_path
    )
    assert settings.effective_database_url == f"sqlite:///{tmp_path / 'pathways.sqlite3'}"


def test_postgres_url_is_taken_as_given(tmp_path: Path) -> None:
    url = "postgresql+psycopg://u@db/pathways"
    settings = load_settings(
        {"LTI_APP_SECRET_KEY": "s", "LTI_APP_DATABASE_URL": url}, config_dir=tmp_path
    )
    assert settings.effective_database_url == url


def test_settings_are_frozen(tmp_path: Path) -> None:
    settings = load_settings({"LTI_APP_SECRET_KEY": "s"}, config_dir=tmp_path)
    with pytest.raises(AttributeError):
        settings.secret_key = "other"  # type: ignore[misc]


@pytest.mark.parametrize(
    "public_url",
    ["https://apps.school.edu/pathways", "https://apps.school.edu/pathways/", "https://a.edu/?x"],
)
def test_a_public_url_with_a_path_stops_start_up_naming_the_setting(
    tmp_path: Path, public_url: str
) -> None:
    """Only the scheme and host were used, so the LMS was given addresses without the path."""
    with pytest.raises(SettingsError, match=r"'LTI_APP_PUBLIC_URL'.*root of its own host name"):
        load_settings(
            {"LTI_APP_SECRET_KEY": "s", "LTI_APP_PUBLIC_URL": public_url}, config_dir=tmp_path
        )


@pytest.mark.parametrize("public_url", ["https://apps.school.edu", "https://apps.school.edu/"])
def test_a_public_url_at_the_root_of_its_host_is_taken(tmp_path: Path, public_url: str) -> None:
    settings = load_settings(
        {"LTI_APP_SECRET_KEY": "s", "LTI_APP_PUBLIC_URL": public_url}, config_dir=tmp_path
    )
    assert settings.public_url == public_url


@pytest.mark.parametrize("public_url", ["https://[fd00::1", "https://apps.school.edu:443a"])
def test_a_public_url_no_connection_can_use_stops_start_up_naming_the_setting(
    tmp_path: Path, public_url: str
) -> None:
    """An unclosed IPv6 bracket or a port that is not a number ended start-up in a traceback."""
    with pytest.raises(SettingsError, match=r"'LTI_APP_PUBLIC_URL' must be an http\(s\) address"):
        load_settings(
            {"LTI_APP_SECRET_KEY": "s", "LTI_APP_PUBLIC_URL": public_url}, config_dir=tmp_path
        )


def test_production_without_a_database_url_stops_start_up_naming_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The default SQLite file is found from the directory a command runs in: in production,
    `db upgrade` run in one directory and the server in another used two databases."""
    monkeypatch.chdir(tmp_path)
    production = {"LTI_APP_ENV": "production", "LTI_APP_SECRET_KEY": "s" * 40}
    with pytest.raises(SettingsError, match=r"'LTI_APP_DATABASE_URL' is required in production"):
        load_settings(production)
    url = "sqlite:////srv/pathways/pathways.sqlite3"
    chosen = load_settings({**production, "LTI_APP_DATABASE_URL": url})
    assert chosen.effective_database_url == url


def test_bad_default_time_zone_stops_start_up_naming_the_setting(tmp_path: Path) -> None:
    for bad in ("Mars/Olympus", "PST8", "../../etc/passwd", ""):
        with pytest.raises(SettingsError, match="LTI_APP_DEFAULT_TIMEZONE"):
            load_settings(
                {"LTI_APP_SECRET_KEY": "s", "LTI_APP_DEFAULT_TIMEZONE": bad}, config_dir=tmp_path
            )


def test_default_time_zone_is_utc_unless_the_school_names_one(tmp_path: Path) -> None:
    assert load_settings({"LTI_APP_SECRET_KEY": "s"}, config_dir=tmp_path).default_timezone == (
        "UTC"
    )
    chosen = load_settings(
        {"LTI_APP_SECRET_KEY": "s", "LTI_APP_DEFAULT_TIMEZONE": " America/Chicago "},
        config_dir=tmp_path,
    )
    assert chosen.default_timezone == "America/Chicago"
