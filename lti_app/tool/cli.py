"""`lti-app platform ...`: the LMS registrations and their deployments, from a shell."""

from __future__ import annotations

from collections.abc import Callable
from urllib.parse import urlsplit

import click
from sqlalchemy import select
from sqlalchemy.orm import Session

from lti_app.db import DATABASE_ID_MAX, Database, utcnow
from lti_app.http import is_http_url
from lti_app.settings import Settings
from lti_app.tool.models import Deployment, DeploymentStatus, Platform
from lti_app.tool.registrations import LAUNCH_REGISTRATIONS

TEXT_MAX = 255
URL_MAX = 1024
"""The columns' lengths (PostgreSQL refuses longer values with a database error)."""


def _clean(name: str, value: str, limit: int = TEXT_MAX) -> str:
    """Trim what a copy and paste adds around a value; refuse empty and over-long values."""
    value = value.strip()
    if not value:
        raise click.BadParameter("must not be empty", param_hint=name)
    if len(value) > limit:
        raise click.BadParameter(
            f"is {len(value)} characters long; at most {limit} fit", param_hint=name
        )
    return value


def _check_url(name: str, value: str, *, production: bool = False, limit: int = URL_MAX) -> str:
    value = _clean(name, value, limit)
    if not is_http_url(value):
        raise click.BadParameter(
            f"{value!r} is not an http(s) URL (check the host, any [ ] around an IPv6 "
            "address, and the port)",
            param_hint=name,
        )
    if production and urlsplit(value).scheme != "https":
        # LTI 1.3 (1EdTech Security Framework): every message travels over TLS.
        raise click.BadParameter(
            f"{value!r} must be https:// in production (LTI 1.3 requires TLS)", param_hint=name
        )
    return value


def find_platform(session: Session, issuer: str, client_id: str) -> Platform:
    """The platform registered with this issuer and client id; a plain error if none."""
    issuer, client_id = issuer.strip(), client_id.strip()
    platform = session.scalar(
        select(Platform).where(Platform.issuer == issuer, Platform.client_id == client_id)
    )
    if platform is None:
        raise click.ClickException(
            f"no platform with issuer {issuer!r} and client id {client_id!r}"
        )
    return platform


def _name_platform_options(command: Callable[..., None]) -> Callable[..., None]:
    """--id, or --issuer with --client-id: the two ways to name a platform."""
    command = click.option("--client-id", default=None, help="With --issuer")(command)
    command = click.option("--issuer", default=None, help="The platform's issuer (iss)")(command)
    return click.option(
        "--id",
        "platform_id",
        type=click.IntRange(1, DATABASE_ID_MAX),
        default=None,
        help="The platform's id, as `lti-app platform list` shows it",
    )(command)


def _named_platform(
    session: Session, platform_id: int | None, issuer: str | None, client_id: str | None
) -> Platform:
    if platform_id is not None:
        if issuer is not None or client_id is not None:
            raise click.UsageError("name the platform by --id or by --issuer and --client-id")
        platform = session.get(Platform, platform_id)
        if platform is None:
            raise click.ClickException(
                f"no platform with id {platform_id} (`lti-app platform list` shows them)"
            )
        return platform
    if issuer is None or client_id is None:
        raise click.UsageError(
            "name the platform: --id (from `lti-app platform list`), or --issuer and --client-id"
        )
    return find_platform(session, issuer, client_id)


def _named_deployment(platform: Platform, deployment_id: str) -> Deployment:
    deployment_id = _clean("--deployment-id", deployment_id)
    found = next((d for d in platform.deployments if d.deployment_id == deployment_id), None)
    if found is None:
        known = ", ".join(d.deployment_id for d in platform.deployments) or "none yet"
        raise click.ClickException(
            f"platform {platform.id} ({platform.issuer}) has no deployment {deployment_id!r}; "
            f"its deployments: {known}"
        )
    return found


def _elsewhere() -> str:
    # Other processes keep active registrations this long (tool.registrations); this one
    # forgets them at the commit.
    return f"in running Pathways processes within {LAUNCH_REGISTRATIONS.ttl:g} seconds"


def command_database(ctx: click.Context) -> Database:
    """The database a command works on, opened once per command and closed after it."""
    obj = ctx.ensure_object(dict)
    if "db" not in obj:
        settings: Settings = obj["settings_loader"]()
        created = Database(settings.effective_database_url)
        obj["db"] = created
        obj["settings"] = settings
        ctx.call_on_close(created.dispose)
    db: Database = obj["db"]
    return db


@click.group("platform")
def platform_group() -> None:
    """Register LMS platforms, approve their deployments, and disable or enable either."""


@platform_group.command("add")
@click.option(
    "--issuer",
    required=True,
    help="The platform's issuer (iss), e.g. https://canvas.instructure.com",
)
@click.option("--client-id", required=True)
@click.option("--auth-login-url", required=True, help="OIDC authorization endpoint")
@click.option("--token-url", required=True, help="OAuth2 token endpoint")
@click.option("--jwks-url", required=True, help="The platform's public key set URL")
@click.option(
    "--token-audience", default=None, help="aud for client assertions if not the token URL"
)
@click.option("--deployment-id", "deployment_ids", multiple=True, help="May be repeated")
@click.option("--name", default="")
@click.option("--auto-approve-deployments", is_flag=True, default=False)
@click.pass_context
def platform_add(
    ctx: click.Context,
    issuer: str,
    client_id: str,
    auth_login_url: str,
    token_url: str,
    jwks_url: str,
    token_audience: str | None,
    deployment_ids: tuple[str, ...],
    name: str,
    auto_approve_deployments: bool,
) -> None:
    """Register a platform (issuer + client id) and its deployments.

    The issuer is the platform's https URL as its id_tokens carry it (iss); the client id and
    deployment ids are the ones the LMS shows when Pathways is added to it.
    """
    settings: Settings = ctx.ensure_object(dict)["settings_loader"]()
    production = settings.env == "production"
    issuer = _check_url("--issuer", issuer, production=production, limit=TEXT_MAX)
    client_id = _clean("--client-id", client_id)
    auth_login_url = _check_url("--auth-login-url", auth_login_url, production=production)
    token_url = _check_url("--token-url", token_url, production=production)
    jwks_url = _check_url("--jwks-url", jwks_url, production=production)
    if token_audience is not None:
        token_audience = _clean("--token-audience", token_audience, URL_MAX)
    name = name.strip()
    if len(name) > TEXT_MAX:
        raise click.BadParameter(f"at most {TEXT_MAX} characters", param_hint="--name")
    # The same deployment given twice is one deployment.
    deployment_ids = tuple(dict.fromkeys(_clean("--deployment-id", dep) for dep in deployment_ids))
    with command_database(ctx).begin() as session:
        exists = session.scalar(
            select(Platform).where(Platform.issuer == issuer, Platform.client_id == client_id)
        )
        if exists is not None:
            raise click.ClickException(
                f"platform {issuer!r} / {client_id!r} is already registered (id {exists.id})"
            )
        platform = Platform(
            issuer=issuer,
            client_id=client_id,
            name=name or urlsplit(issuer).netloc or issuer,
            auth_login_url=auth_login_url,
            token_url=token_url,
            jwks_url=jwks_url,
            token_audience=token_audience,
            auto_approve_deployments=auto_approve_deployments,
        )
        for dep in deployment_ids:
            platform.deployments.append(
                Deployment(deployment_id=dep, status=DeploymentStatus.ACTIVE, approved_at=utcnow())
            )
        session.add(platform)
        session.flush()
        click.echo(f"registered platform {platform.id}: {issuer} client {client_id}")


@platform_group.command("list")
@click.pass_context
def platform_list(ctx: click.Context) -> None:
    """List registered platforms."""
    with command_database(ctx).begin() as session:
        rows = session.scalars(select(Platform).order_by(Platform.id)).all()
        if not rows:
            click.echo("no platforms registered")
        for p in rows:
            pending = sum(1 for d in p.deployments if d.status is DeploymentStatus.PENDING)
            click.echo(
                f"{p.id}\t{p.issuer}\t{p.client_id}\tdeployments={len(p.deployments)}"
                f"{f' pending={pending}' if pending else ''}"
                f"{'' if p.is_active else ' DISABLED'}"
            )


@platform_group.command("show")
@click.option("--issuer", required=True)
@click.option("--client-id", required=True)
@click.pass_context
def platform_show(ctx: click.Context, issuer: str, client_id: str) -> None:
    """Show one platform and its deployments."""
    with command_database(ctx).begin() as session:
        p = find_platform(session, issuer, client_id)
        for label, value in (
            ("id", p.id),
            ("name", p.name),
            ("issuer", p.issuer),
            ("client id", p.client_id),
            ("auth login url", p.auth_login_url),
            ("token url", p.token_url),
            ("token audience", p.token_audience or "(token url)"),
            ("jwks url", p.jwks_url),
            ("auto-approve deployments", p.auto_approve_deployments),
            ("active", p.is_active),
        ):
            click.echo(f"{label}: {value}")
        for d in p.deployments:
            click.echo(f"deployment {d.deployment_id}: {d.status.value}")


@platform_group.command("remove")
@click.option("--issuer", required=True)
@click.option("--client-id", required=True)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation")
@click.pass_context
def platform_remove(ctx: click.Context, issuer: str, client_id: str, yes: bool) -> None:
    """Remove a platform and everything Pathways stored for it."""
    with command_database(ctx).begin() as session:
        p = find_platform(session, issuer, client_id)
        if not yes:
            click.confirm(f"Remove {issuer} / {client_id} and all its courses' data?", abort=True)
        session.delete(p)
        click.echo(f"removed platform {issuer} client {client_id}")


@platform_group.command("disable")
@_name_platform_options
@click.pass_context
def platform_disable(
    ctx: click.Context, platform_id: int | None, issuer: str | None, client_id: str | None
) -> None:
    """Refuse a registration's launches and hold its scores and roster syncs until enabled."""
    with command_database(ctx).begin() as session:
        p = _named_platform(session, platform_id, issuer, client_id)
        which = f"platform {p.id} ({p.issuer} client {p.client_id})"
        was_active, p.is_active = p.is_active, False
    if not was_active:
        click.echo(f"{which} was already disabled")
        return
    click.echo(
        f"{which} is disabled: its launches are refused and its open sessions end "
        f"({_elsewhere()}); its scores wait unsent and its rosters are not synced until "
        f"`lti-app platform enable --id {p.id}`"
    )


@platform_group.command("enable")
@_name_platform_options
@click.pass_context
def platform_enable(
    ctx: click.Context, platform_id: int | None, issuer: str | None, client_id: str | None
) -> None:
    """Accept a disabled registration's launches again and send its waiting scores."""
    with command_database(ctx).begin() as session:
        p = _named_platform(session, platform_id, issuer, client_id)
        which = f"platform {p.id} ({p.issuer} client {p.client_id})"
        was_active, p.is_active = p.is_active, True
    if was_active:
        click.echo(f"{which} was already enabled")
        return
    click.echo(
        f"{which} is enabled: its launches open Pathways ({_elsewhere()}) and the grade "
        "workers send its waiting scores"
    )


@platform_group.command("disable-deployment")
@_name_platform_options
@click.option("--deployment-id", required=True)
@click.pass_context
def platform_disable_deployment(
    ctx: click.Context,
    platform_id: int | None,
    issuer: str | None,
    client_id: str | None,
    deployment_id: str,
) -> None:
    """Refuse launches through one deployment (one install of Pathways in the LMS)."""
    named = (platform_id, issuer, client_id, deployment_id)
    was, which, _ = _set_deployment_status(ctx, *named, DeploymentStatus.DISABLED)
    if was is DeploymentStatus.DISABLED:
        click.echo(f"{which} was already disabled")
        return
    # A course is the registration's, not a deployment's (Canvas launches one course through
    # an account's install and the course's own), so its scores and roster go on.
    click.echo(
        f"{which} is disabled: launches through it are refused and its open sessions end "
        f"({_elsewhere()}); scores and rosters of its courses still go, as the courses "
        "belong to the registration (`lti-app platform disable` holds those)"
    )


@platform_group.command("enable-deployment")
@_name_platform_options
@click.option("--deployment-id", required=True)
@click.pass_context
def platform_enable_deployment(
    ctx: click.Context,
    platform_id: int | None,
    issuer: str | None,
    client_id: str | None,
    deployment_id: str,
) -> None:
    """Accept launches through a disabled (or waiting) deployment again."""
    named = (platform_id, issuer, client_id, deployment_id)
    was, which, disabled_platform = _set_deployment_status(ctx, *named, DeploymentStatus.ACTIVE)
    if was is DeploymentStatus.ACTIVE:
        click.echo(f"{which} was already active")
    else:
        click.echo(f"{which} is active: launches through it open Pathways ({_elsewhere()})")
    if disabled_platform is not None:
        click.echo(
            "its registration is disabled, so its launches are still refused: "
            f"`lti-app platform enable --id {disabled_platform}`"
        )


def _set_deployment_status(
    ctx: click.Context,
    platform_id: int | None,
    issuer: str | None,
    client_id: str | None,
    deployment_id: str,
    status: DeploymentStatus,
) -> tuple[DeploymentStatus, str, int | None]:
    """Set a named deployment's status: what it was, how to name it in a message, and its
    registration's id when that registration is disabled."""
    with command_database(ctx).begin() as session:
        p = _named_platform(session, platform_id, issuer, client_id)
        dep = _named_deployment(p, deployment_id)
        which = f"deployment {dep.deployment_id} of {p.issuer} client {p.client_id}"
        was, dep.status = dep.status, status
        if status is DeploymentStatus.ACTIVE:
            dep.approved_at = dep.approved_at or utcnow()
        return was, which, None if p.is_active else p.id


@platform_group.command("approve-deployment")
@click.option("--issuer", required=True)
@click.option("--client-id", required=True)
@click.option("--deployment-id", required=True)
@click.pass_context
def platform_approve(ctx: click.Context, issuer: str, client_id: str, deployment_id: str) -> None:
    """Approve a deployment (pending after its first launch, or new)."""
    with command_database(ctx).begin() as session:
        deployment_id = _clean("--deployment-id", deployment_id)
        p = find_platform(session, issuer, client_id)
        dep = next((d for d in p.deployments if d.deployment_id == deployment_id), None)
        if dep is None:
            # Approving ahead of the first launch is allowed: say so, in case it was a typo.
            dep = Deployment(deployment_id=deployment_id)
            p.deployments.append(dep)
            click.echo(f"deployment {deployment_id} had not launched yet; added it")
        dep.status = DeploymentStatus.ACTIVE
        dep.approved_at = utcnow()
        click.echo(f"deployment {deployment_id} of {p.issuer} is active")
