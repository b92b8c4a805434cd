"""A TrueType font cut to the glyphs one document draws, in well under a millisecond.

fontTools' subsetter rebuilds a font's tables (tens of milliseconds a font); a document only
needs its glyphs' outlines. `GlyphTable` reads a font once (its tables as bytes, each glyph's
record as bytes, the components of each composite glyph) and `cut` writes the same font in
which every glyph the document does not draw is empty: the glyph numbering, the metrics
(hmtx), cmap and every other table stay as they are, so the PDF's widths, CIDToGIDMap and
ToUnicode (`activities.pdf_fonts`) stay valid for every cut. Only glyf, loca (written in the
long format) and head (its loca format and the font's checksum) are rewritten, with the
table directory and every table's checksum, as the OpenType specification lays them out.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from io import BytesIO

from fontTools.ttLib import TTFont

_REWRITTEN = ("glyf", "loca", "head")
_CHECKSUM_MAGIC = 0xB1B0AFBA
_HEAD_CHECKSUM_ADJUSTMENT = 8
_HEAD_INDEX_TO_LOC_FORMAT = 50


def _padded(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def _checksum(data: bytes) -> int:
    words = _padded(data)
    total: int = sum(struct.unpack(f">{len(words) // 4}I", words))
    return total & 0xFFFFFFFF


@dataclass(frozen=True)
class GlyphTable:
    """A TrueType font as `cut` needs it, read once."""

    tables: dict[str, bytes]
    """Every table but glyf, loca and head, as the font has it."""
    head: bytes
    glyphs: tuple[bytes, ...]
    """Each glyph's record (glyph id order), padded to a multiple of four bytes."""
    components: tuple[tuple[int, ...], ...]
    """The glyph ids each composite glyph is drawn from (empty for a simple glyph)."""

    @classmethod
    def read(cls, font_file: bytes) -> GlyphTable:
        font = TTFont(BytesIO(font_file), recalcTimestamp=False)
        order = font.getGlyphOrder()
        ids = {name: gid for gid, name in enumerate(order)}
        raw = font.reader["glyf"]
        offsets = font["loca"]
        glyf = font["glyf"]
        glyphs = tuple(_padded(raw[offsets[g] : offsets[g + 1]]) for g in range(len(order)))
        components = tuple(
            tuple(ids[c] for c in glyf[name].getComponentNames(glyf))
            if glyf[name].isComposite()
            else ()
            for name in order
        )
        tables = {tag: font.reader[tag] for tag in font.reader.tables if tag not in _REWRITTEN}
        return cls(tables=tables, head=font.reader["head"], glyphs=glyphs, components=components)

    def closure(self, gids: Iterable[int]) -> frozenset[int]:
        """`gids`, .notdef (glyph 0) and every glyph a composite among them is drawn from."""
        keep = {0}
        pending = list(gids)
        while pending:
            gid = pending.pop()
            if gid not in keep:
                keep.add(gid)
                pending.extend(self.components[gid])
        return frozenset(keep)

    def cut(self, keep: frozenset[int]) -> bytes:
        """The font file with only the glyphs `keep` (a `closure`) drawn, the others empty."""
        kept: list[bytes] = []
        offsets = [0]
        for gid, record in enumerate(self.glyphs):
            if gid in keep:
                kept.append(record)
                offsets.append(offsets[-1] + len(record))
            else:
                offsets.append(offsets[-1])
        head = bytearray(self.head)
        head[_HEAD_CHECKSUM_ADJUSTMENT : _HEAD_CHECKSUM_ADJUSTMENT + 4] = bytes(4)
        head[_HEAD_INDEX_TO_LOC_FORMAT : _HEAD_INDEX_TO_LOC_FORMAT + 2] = b"\0\1"  # long loca
        tables = self.tables | {
            "glyf": b"".join(kept),
            "loca": struct.pack(f">{len(offsets)}I", *offsets),
            "head": bytes(head),
        }
        return _assemble(tables)


def _assemble(tables: dict[str, bytes]) -> bytes:
    """An sfnt file: the offset table, the table directory (tags sorted), the tables each
    padded to four bytes, and head's checkSumAdjustment set for the whole file."""
    tags = sorted(tables)
    count = len(tags)
    selector = count.bit_length() - 1
    search_range = 16 << selector
    header = struct.pack(
        ">IHHHH", 0x00010000, count, search_range, selector, count * 16 - search_range
    )
    directory = bytearray()
    body = bytearray()
    offset = len(header) + 16 * count
    head_at = 0
    for tag in tags:
        data = tables[tag]
        if tag == "head":
            head_at = offset + len(body)
        directory += struct.pack(
            ">4sIII", tag.encode("latin-1"), _checksum(data), offset + len(body), len(data)
        )
        body += _padded(data)
    font = bytearray(header + directory + body)
    adjustment = (_CHECKSUM_MAGIC - _checksum(bytes(font))) & 0xFFFFFFFF
    at = head_at + _HEAD_CHECKSUM_ADJUSTMENT
    font[at : at + 4] = struct.pack(">I", adjustment)
    return bytes(font)
