"""Read the text layer of a PDF WeasyPrint wrote, without poppler or pypdf: inflate the
streams, map each font's glyph ids through its ToUnicode CMap, decode the TJ/Tj strings, and
place each run with its Tm matrix and its glyphs' advances (the fonts' /W arrays).

Good enough for WeasyPrint's own output (Identity-H fonts, hex strings); not a general reader.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

_OBJ = re.compile(rb"(\d+) 0 obj(.*?)endobj", re.S)
_STREAM = re.compile(rb"stream\r?\n(.*?)\r?\nendstream", re.S)


def _objects(pdf: bytes) -> dict[int, bytes]:
    objects = {int(m.group(1)): m.group(2) for m in _OBJ.finditer(pdf)}
    # PDF 1.5 object streams hold small objects (font dictionaries among them) compressed.
    for body in list(objects.values()):
        if b"/ObjStm" not in body.split(b"stream", 1)[0]:
            continue
        first = int(re.search(rb"/First (\d+)", body).group(1))  # type: ignore[union-attr]
        data = _stream(body)
        header = [int(n) for n in data[:first].split()]
        pairs = list(zip(header[::2], header[1::2], strict=True))
        for index, (number, offset) in enumerate(pairs):
            end = pairs[index + 1][1] if index + 1 < len(pairs) else len(data) - first
            objects.setdefault(number, data[first + offset : first + end])
    return objects


def _stream(body: bytes) -> bytes:
    match = _STREAM.search(body)
    if match is None:
        return b""
    data = match.group(1)
    if b"/FlateDecode" in body.split(b"stream", 1)[0]:
        try:
            return zlib.decompress(data)
        except zlib.error:
            return zlib.decompressobj().decompress(data)
    return data


def _cmap(data: bytes) -> dict[int, str]:
    mapping: dict[int, str] = {}
    text = data.decode("latin-1")
    for block in re.findall(r"beginbfchar(.*?)endbfchar", text, re.S):
        for src, dst in re.findall(r"<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>", block):
            mapping[int(src, 16)] = bytes.fromhex(dst).decode("utf-16-be")
    for block in re.findall(r"beginbfrange(.*?)endbfrange", text, re.S):
        for lo, hi, dst in re.findall(
            r"<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>\s*<([0-9a-fA-F]+)>", block
        ):
            start = int.from_bytes(bytes.fromhex(dst), "big")
            for offset, code in enumerate(range(int(lo, 16), int(hi, 16) + 1)):
                mapping[code] = chr(start + offset)
    return mapping


def _widths(body: bytes) -> dict[int, float]:
    """A CIDFont's /W array: glyph id -> advance, in thousandths of the font size."""
    match = re.search(rb"/W \[((?:[^\[\]]|\[[^\]]*\])*)\]", body)
    tokens = re.findall(rb"\[[^\]]*\]|[\d.]+", match.group(1)) if match else []
    widths: dict[int, float] = {}
    i = 0
    while i + 1 < len(tokens):
        first = int(tokens[i])
        if tokens[i + 1].startswith(b"["):  # c [w1 w2 ...]
            for offset, width in enumerate(tokens[i + 1][1:-1].split()):
                widths[first + offset] = float(width)
            i += 2
        else:  # c_first c_last w
            for code in range(first, int(tokens[i + 1]) + 1):
                widths[code] = float(tokens[i + 2])
            i += 3
    return widths


@dataclass(frozen=True)
class Run:
    """Text one operator shows, in visual order (left to right), where the page shows it: CSS
    pixels from the page's top left corner, as WeasyPrint lays the page out."""

    x: float
    y: float
    x_end: float
    text: str


def pdf_runs(pdf: bytes) -> list[Run]:
    """The document's text-showing operator runs, each with its place on the page."""
    objects = _objects(pdf)
    fonts: dict[int, tuple[dict[int, str], dict[int, float]]] = {}
    for number, body in objects.items():
        match = re.search(rb"/ToUnicode (\d+) 0 R", body)
        if match:
            descendant = re.search(rb"/DescendantFonts \[(\d+) 0 R", body)
            widths = _widths(objects[int(descendant.group(1))]) if descendant else {}
            fonts[number] = (_cmap(_stream(objects[int(match.group(1))])), widths)
    resources: dict[bytes, tuple[dict[int, str], dict[int, float]]] = {}
    for body in objects.values():
        # Font resource dictionaries, inline or indirect: /NAME <font object> 0 R.
        for name, ref in re.findall(rb"/([A-Za-z0-9_+.-]+) (\d+) 0 R", body):
            if int(ref) in fonts:
                resources[name] = fonts[int(ref)]
    runs: list[Run] = []
    for body in objects.values():
        if b"stream" not in body:
            continue
        content = _stream(body)
        if b"TJ" not in content and b"Tj" not in content:
            continue
        current: tuple[dict[int, str], dict[int, float]] = ({}, {})
        size = x = y = 0.0
        for token in re.finditer(
            rb"/(\S+) ([\d.]+) Tf|[-\d.]+ [-\d.]+ [-\d.]+ [-\d.]+ ([-\d.]+) ([-\d.]+) Tm"
            rb"|\[(.*?)\]\s*TJ|<([0-9a-fA-F]*)>\s*Tj",
            content,
            re.S,
        ):
            if token.group(1):
                current, size = resources.get(token.group(1), ({}, {})), float(token.group(2))
                continue
            if token.group(3):
                x, y = float(token.group(3)), float(token.group(4))
                continue
            raw = token.group(5) or token.group(6) or b""
            parts = (
                re.findall(rb"<([0-9a-fA-F]*)>|(-?[\d.]+)", raw) if token.group(5) else [(raw, b"")]
            )
            chars, advance = [], 0.0
            for chunk, adjustment in parts:
                if adjustment:
                    advance -= float(adjustment)  # TJ numbers move the next glyph back
                for i in range(0, len(chunk), 4):
                    glyph = int(chunk[i : i + 4], 16)
                    chars.append(current[0].get(glyph, ""))
                    advance += current[1].get(glyph, 0.0)
            width = advance * size / 1000
            runs.append(Run(x, y, x + width, "".join(chars)))
            x += width
    return runs


def pdf_text(pdf: bytes) -> str:
    """The document's text, one line per text-showing operator run."""
    return "\n".join(run.text for run in pdf_runs(pdf))


def page_sizes(pdf: bytes) -> list[tuple[float, float]]:
    """Each page's width and height in points (1/72 inch), from its /MediaBox."""
    sizes = []
    for body in _objects(pdf).values():
        if not re.search(rb"/Type\s*/Page\b", body):
            continue
        box = re.search(rb"/MediaBox\s*\[\s*([-\d.]+) ([-\d.]+) ([-\d.]+) ([-\d.]+)\s*\]", body)
        if box:
            x0, y0, x1, y1 = (float(v) for v in box.groups())
            sizes.append((round(x1 - x0, 1), round(y1 - y0, 1)))
    return sizes
