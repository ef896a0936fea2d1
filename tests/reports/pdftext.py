"""Read the text layer of a PDF WeasyPrint wrote, without poppler or pypdf: inflate the
streams, map each font's glyph ids through its ToUnicode CMap, decode the TJ/Tj strings.

Good enough for WeasyPrint's own output (Identity-H fonts, hex strings); not a general reader.
"""

from __future__ import annotations

import re
import zlib

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


def pdf_text(pdf: bytes) -> str:
    """The document's text, one line per text-showing operator run."""
    objects = _objects(pdf)
    font_maps: dict[int, dict[int, str]] = {}
    for number, body in objects.items():
        match = re.search(rb"/ToUnicode (\d+) 0 R", body)
        if match:
            font_maps[number] = _cmap(_stream(objects[int(match.group(1))]))
    resources: dict[bytes, dict[int, str]] = {}
    for body in objects.values():
        # Font resource dictionaries, inline or indirect: /NAME <font object> 0 R.
        for name, ref in re.findall(rb"/([A-Za-z0-9_+.-]+) (\d+) 0 R", body):
            if int(ref) in font_maps:
                resources[name] = font_maps[int(ref)]
    lines: list[str] = []
    for body in objects.values():
        if b"stream" not in body:
            continue
        content = _stream(body)
        if b"TJ" not in content and b"Tj" not in content:
            continue
        current: dict[int, str] = {}
        for token in re.finditer(
            rb"/(\S+) [\d.]+ Tf|\[(.*?)\]\s*TJ|<([0-9a-fA-F]*)>\s*Tj", content, re.S
        ):
            if token.group(1):
                current = resources.get(token.group(1), {})
                continue
            raw = token.group(2) or token.group(3) or b""
            hexes = re.findall(rb"<([0-9a-fA-F]*)>", raw) if token.group(2) else [raw]
            chars = []
            for chunk in hexes:
                for i in range(0, len(chunk), 4):
                    chars.append(current.get(int(chunk[i : i + 4], 16), ""))
            lines.append("".join(chars))
    return "\n".join(lines)
