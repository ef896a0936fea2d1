"""The Babel catalogs: Spanish is complete, and each committed .mo matches its .po."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.mofile import read_mo, write_mo
from babel.messages.pofile import read_po

from lti_app.reports.i18n import LANGUAGES

TRANSLATIONS = Path(__file__).resolve().parents[2] / "lti_app" / "translations"


@pytest.mark.parametrize("lang", sorted(LANGUAGES))
def test_compiled_catalog_matches_its_source(lang: str) -> None:
    folder = TRANSLATIONS / lang / "LC_MESSAGES"
    with (folder / "messages.po").open("rb") as f:
        source = read_po(f, locale=lang)
    buffer = io.BytesIO()
    write_mo(buffer, source)
    with (folder / "messages.mo").open("rb") as f:
        compiled = read_mo(f)
    buffer.seek(0)
    expected = read_mo(buffer)
    assert _messages(compiled) == _messages(expected), (
        "run: pybabel compile -d lti_app/translations"
    )


def _messages(catalog: Catalog) -> dict[object, object]:
    """msgid -> translation; a plural message's ids and forms as tuples (read_mo gives lists)."""

    def frozen(value: object) -> object:
        return tuple(value) if isinstance(value, list | tuple) else value

    return {frozen(m.id): frozen(m.string) for m in catalog if m.id}


def _translated(catalog: Catalog, msgid: object) -> bool:
    message = catalog.get(msgid)  # type: ignore[arg-type]
    if message is None:
        return False
    # A plural message needs every form (Spanish: one and many).
    forms = message.string if isinstance(message.string, list | tuple) else [message.string]
    return bool(forms) and all(forms)


def test_spanish_translates_every_message_of_the_template() -> None:
    with (TRANSLATIONS / "messages.pot").open("rb") as f:
        template = read_po(f)
    with (TRANSLATIONS / "es" / "LC_MESSAGES" / "messages.po").open("rb") as f:
        spanish = read_po(f, locale="es")
    missing = [m.id for m in template if m.id and not _translated(spanish, m.id)]
    assert missing == []
    assert not any(m.fuzzy for m in spanish if m.id)
