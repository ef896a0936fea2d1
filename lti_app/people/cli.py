"""`lti-app person ...`: answer one person's request to see or to delete their data."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import click
from sqlalchemy.orm import Session

from lti_app.people.erasure import erase_person
from lti_app.people.services import SEARCH_LIMIT, export_person, find_person, search_people
from lti_app.tool.cli import command_database, find_platform
from lti_app.tool.models import Person


def _name_person_options(command: Callable[..., None]) -> Callable[..., None]:
    """--issuer, --client-id and --sub: how the LMS names one of its users."""
    command = click.option(
        "--sub", required=True, help="The person's LMS user id (the sub of their launches)"
    )(command)
    command = click.option("--client-id", required=True)(command)
    return click.option("--issuer", required=True, help="The platform's issuer (iss)")(command)


def _named_person(session: Session, issuer: str, client_id: str, sub: str) -> Person:
    platform = find_platform(session, issuer, client_id)
    sub = sub.strip()
    person = find_person(session, platform=platform, sub=sub)
    if person is None:
        raise click.ClickException(
            f"platform {platform.id} ({platform.issuer} client {platform.client_id}) has no "
            f"person with sub {sub!r} (`lti-app person find` searches by name or email; "
            "Pathways stores nobody until they launch it or a roster sync lists them)"
        )
    return person


@click.group("person")
def person_group() -> None:
    """Export or erase everything Pathways keeps about one person (a data request)."""


@person_group.command("find")
@click.option("--issuer", required=True, help="The platform's issuer (iss)")
@click.option("--client-id", required=True)
@click.argument("words")
@click.pass_context
def person_find(ctx: click.Context, issuer: str, client_id: str, words: str) -> None:
    """List the people whose name, email or LMS user id contains WORDS, with their sub.

    A request names a student by name or email; `export` and `erase` need the LMS user id.
    """
    with command_database(ctx).begin() as session:
        platform = find_platform(session, issuer, client_id)
        found = search_people(session, platform=platform, words=words.strip())
        if not found:
            raise click.ClickException(f"nobody of {platform.issuer} matches {words.strip()!r}")
        for person in found:
            click.echo(f"{person.sub}\t{person.display_name}\t{person.email or '-'}")
        if len(found) == SEARCH_LIMIT:
            click.echo(f"(the first {SEARCH_LIMIT} only: give more of the name)", err=True)


@person_group.command("export")
@_name_person_options
@click.option(
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Write the JSON to this file (readable by its owner only) instead of stdout",
)
@click.pass_context
def person_export(
    ctx: click.Context, issuer: str, client_id: str, sub: str, output: Path | None
) -> None:
    """Print one person's data as JSON: profile, goals, check-ins, evidence, choices, ...

    Private teacher notes and private check-ins are included, as they are about the person;
    other people appear only as the names of teachers who wrote an entry. Read it before
    handing it over.
    """
    with command_database(ctx).begin() as session:
        person = _named_person(session, issuer, client_id, sub)
        text = json.dumps(export_person(session, person), ensure_ascii=False, indent=2) + "\n"
    if output is None:
        click.echo(text, nl=False)
        return
    # Created readable by its owner only: it holds one student's private record.
    fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)
    click.echo(f"wrote the data of {sub.strip()!r} to {output}", err=True)


@person_group.command("erase")
@_name_person_options
@click.option("--yes", is_flag=True, help="Do not ask for confirmation")
@click.pass_context
def person_erase(ctx: click.Context, issuer: str, client_id: str, sub: str, yes: bool) -> None:
    """Delete one person and everything keyed to them, queued scores included.

    What they wrote as a teacher about students (evidence, goals, check-ins, feedback) stays
    with those students, without their name. The LMS is not told: its gradebook keeps the
    scores it received, and while it still lists the person in a course, their next launch or
    roster sync brings back their name and membership (none of the erased data).
    """
    with command_database(ctx).begin() as session:
        person = _named_person(session, issuer, client_id, sub)
        where = f"{issuer.strip()} client {client_id.strip()}"
        who = f"{person.display_name} (sub {person.sub!r} of {where})"
        if not yes:
            click.confirm(
                f"Erase {who} and everything Pathways stored for them? This cannot be undone.",
                abort=True,
            )
        erased = erase_person(session, person)
    click.echo(f"erased {who}")
    if erased.deleted:
        click.echo("deleted: " + ", ".join(f"{n} {what}" for what, n in erased.deleted.items()))
    if erased.kept_without_author:
        kept = ", ".join(f"{n} {what}" for what, n in erased.kept_without_author.items())
        click.echo(f"kept with the students, without their author: {kept}")
