"""Source Sans Pro for the billing PDFs: metrics read once per process, embedded programs cut
once per process and character set.

A document writes text with the font's Unicode code points as CIDs (Type0 font, Identity-H):
a string is drawn as its UTF-16BE bytes, and a CIDToGIDMap maps each CID to its glyph. The
few characters of the font outside the Basic Multilingual Plane get CIDs in the surrogate
range (U+D800–U+DFFF, never characters on their own), and ToUnicode maps them back.

What a document embeds for one style comes from one `FontProgram`: the TrueType cut to a set
of characters, its widths, CIDToGIDMap and ToUnicode. Cutting a font with fontTools is
costly (tens of milliseconds), so it happens once per process and set, never per document:

- `BASE_CHARACTERS`, the set of nearly every document: printable ASCII, Latin-1, Latin
  Extended-A (names of Central European, Baltic, Turkish parties) and the typographic
  punctuation, "€" and spaces French text uses. Every document whose text stays within it
  uses this same program, cut once per process.
- A document with characters of the font outside it (a Greek or Cyrillic name, say) uses
  the base set plus the font's characters of their blocks of 128 code points, cut on first
  use and kept (`_program`, an LRU cache): the documents of every Greek name reuse it.
- A character the font has no glyph for is refused (`UnprintableText`), never dropped or drawn
  as the .notdef box (which PDF/A forbids): the error names it, the caller makes it an alert.

Per document, the program's glyphs the document does not draw are emptied
(`activities.truetype_cut`, a fraction of a millisecond): glyph ids, metrics and the
program's CIDToGIDMap, widths and ToUnicode stay valid, and a file carries only the outlines
it shows (about 6 kB a style instead of 15 kB). Same input, same bytes.

Nothing here is mutated once built, so documents render in parallel threads without a lock.
"""

from __future__ import annotations

import hashlib
import unicodedata
import zlib
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from io import BytesIO

from fontTools import subset as ftsubset
from fontTools.ttLib import TTFont

from activities.truetype_cut import GlyphTable

FAMILY = "SourceSansPro"
STYLES = ("", "B")
_PACKAGE = "font_source_sans_pro"
_FILES = {"": "SourceSansPro-Regular.ttf", "B": "SourceSansPro-Bold.ttf"}
_POSTSCRIPT = {"": "SourceSansPro-Regular", "B": "SourceSansPro-Bold"}
_DROPPED = ["BASE", "DSIG", "GDEF", "GPOS", "GSUB", "JSTF", "MATH", "kern", "gasp"]
_ASTRAL_CIDS = 0xD800
"""First CID of the characters outside the BMP (the surrogate range holds no character)."""

BASE_CHARACTERS = frozenset(
    [chr(c) for c in range(0x20, 0x7F)]
    + [chr(c) for c in range(0xA0, 0x180)]
    + list("\u0192\u02c6\u02c7\u02d8\u02d9\u02da\u02db\u02dc\u02dd")  # ƒ and spacing accents
    + list("\u2009\u202f\u2010\u2011\u2013\u2014\u2018\u2019\u201a\u201c\u201d\u201e")
    + list("\u2020\u2021\u2022\u2026\u2030\u2039\u203a\u20ac\u2122\u2212")
)
"""The characters every document's font program holds (those of them the font has)."""


class UnprintableText(ValueError):
    """Text with a character Source Sans Pro has no glyph for."""


@dataclass(frozen=True)
class FontProgram:
    """What a PDF embeds for one style and one character set: the font, read for per-document
    cuts, and its CIDToGIDMap, widths and ToUnicode, compressed, ready to write."""

    style: str
    glyph_table: GlyphTable
    glyph_ids: dict[str, int]
    """The glyph of each character of the set."""
    cid_to_gid: bytes
    widths: bytes
    """The W array of the CIDFont, every CID of the set."""
    to_unicode: bytes

    def font_file(self, used: frozenset[str]) -> EmbeddedFont:
        """The font program of a document that drew `used`: the glyphs of other characters
        emptied (`truetype_cut`), so that a file carries the outlines it shows and no more."""
        keep = self.glyph_table.closure(self.glyph_ids[c] for c in used)
        data = self.glyph_table.cut(keep)
        tag = _subset_tag(self.style, keep)
        return EmbeddedFont(f"{tag}+{_POSTSCRIPT[self.style]}", zlib.compress(data, 6), len(data))


@dataclass(frozen=True)
class EmbeddedFont:
    postscript_name: str
    """With its subset tag (six letters derived from the glyphs it holds): ABCDEF+Name."""
    data: bytes
    """Compressed (FlateDecode)."""
    length: int


@dataclass(frozen=True)
class Face:
    """One style of the font, as the layout measures and encodes text (read once)."""

    style: str
    advances: dict[str, int]
    """Advance width of each character the font has, in thousandths of an em."""
    cids: dict[str, int]
    default_width: int
    ascent: int
    descent: int
    cap_height: int
    bbox: tuple[int, int, int, int]
    italic_angle: float
    stem_v: int
    flags: int

    def width(self, text: str, size: float) -> float:
        """The width of `text` at `size` points, in points (no kerning: none is drawn)."""
        advances = self.advances
        return sum([advances[c] for c in text]) * size / 1000

    def check(self, text: str) -> None:
        """Raise `UnprintableText` naming the characters of `text` the font cannot draw."""
        missing = sorted({c for c in text if c not in self.advances})
        if missing:
            listed = ", ".join(
                f"{c!r} (U+{ord(c):04X} {unicodedata.name(c, '?')})" for c in missing
            )
            raise UnprintableText(
                f"{FAMILY} has no glyph for {listed} in {text!r}: record the text in Latin, "
                "Greek or Cyrillic script (e.g. the transliterated name), which the documents "
                "can print"
            )

    def encode(self, text: str) -> bytes:
        """`text` as the content stream's hex string of CIDs (checked with `check` first)."""
        if text.isascii() or max(text) < "\ud800":
            return text.encode("utf-16-be").hex().encode()
        cids = self.cids
        return "".join(f"{cids[c]:04x}" for c in text).encode()

    def program(self, used: frozenset[str]) -> FontProgram:
        """The font program for a document that drew the characters `used`: the base set,
        plus, for characters beyond it, every character of the font in their blocks of 128
        code points (a Greek name brings the Greek letters), so that few distinct programs
        are ever cut and each is reused."""
        extra = used - BASE_CHARACTERS
        if not extra:
            return _program(self.style, BASE_CHARACTERS)
        blocks = {ord(c) >> 7 for c in extra}
        added = frozenset(c for c in self.advances if ord(c) >> 7 in blocks)
        return _program(self.style, BASE_CHARACTERS | added)


@cache
def _font_file(style: str) -> bytes:
    return resources.files(_PACKAGE).joinpath("files", _FILES[style]).read_bytes()


def _open(style: str) -> TTFont:
    return TTFont(BytesIO(_font_file(style)), recalcTimestamp=False)


@cache
def face(style: str) -> Face:
    """The style "" (regular) or "B" (bold), parsed once per process."""
    font = _open(style)
    scale = 1000 / font["head"].unitsPerEm
    metrics = font["hmtx"].metrics
    cmap = font.getBestCmap()
    advances = {chr(c): round(metrics[name][0] * scale) for c, name in cmap.items()}
    astral = sorted(c for c in cmap if c > 0xFFFF)
    cids = {chr(c): c for c in cmap if c <= 0xFFFF and not 0xD800 <= c <= 0xDFFF}
    cids |= {chr(c): _ASTRAL_CIDS + i for i, c in enumerate(astral)}
    head, os2 = font["head"], font["OS/2"]
    bold = os2.usWeightClass >= 600
    return Face(
        style=style,
        advances=advances,
        cids=cids,
        default_width=round(metrics[".notdef"][0] * scale),
        ascent=round(font["hhea"].ascent * scale),
        descent=round(font["hhea"].descent * scale),
        cap_height=round(os2.sCapHeight * scale),
        bbox=(
            round(head.xMin * scale),
            round(head.yMin * scale),
            round(head.xMax * scale),
            round(head.yMax * scale),
        ),
        italic_angle=float(font["post"].italicAngle),
        stem_v=50 + int((os2.usWeightClass / 65) ** 2),
        # Symbolic (4): glyphs beyond the standard Latin set; ForceBold (1 << 18) when bold.
        flags=4 | (1 << 18 if bold else 0),
    )


def _subset_tag(style: str, glyphs: frozenset[int]) -> str:
    digest = hashlib.sha256(f"{style}|{sorted(glyphs)}".encode()).digest()
    return "".join(chr(ord("A") + b % 26) for b in digest[:6])


def _widths_array(advances: dict[int, int]) -> bytes:
    """The CIDFont's W array: runs of consecutive CIDs, `first [w1 w2 ...]`."""
    parts: list[str] = []
    run: list[int] = []
    start = previous = -2
    for cid in sorted(advances):
        if cid != previous + 1 and run:
            parts.append(f"{start} [{' '.join(map(str, run))}]")
            run = []
        if not run:
            start = cid
        run.append(advances[cid])
        previous = cid
    if run:
        parts.append(f"{start} [{' '.join(map(str, run))}]")
    return f"[{' '.join(parts)}]".encode()


def _to_unicode(cid_chars: dict[int, str]) -> bytes:
    """A ToUnicode CMap from each CID to its character (bfrange runs within a 256 block)."""
    ranges: list[str] = []
    singles: list[str] = []
    cids = sorted(cid_chars)
    index = 0
    while index < len(cids):
        first = cids[index]
        if first >= _ASTRAL_CIDS:
            utf16 = cid_chars[first].encode("utf-16-be").hex().upper()
            singles.append(f"<{first:04X}> <{utf16}>")
            index += 1
            continue
        last = first
        while (
            index + 1 < len(cids)
            and cids[index + 1] == last + 1
            and (last + 1) >> 8 == first >> 8
            and last + 1 < _ASTRAL_CIDS
        ):
            index += 1
            last += 1
        ranges.append(f"<{first:04X}> <{last:04X}> <{first:04X}>")
        index += 1
    blocks: list[str] = []
    for kind, entries in (("bfrange", ranges), ("bfchar", singles)):
        for at in range(0, len(entries), 100):
            chunk = entries[at : at + 100]
            blocks.append(f"{len(chunk)} begin{kind}\n" + "\n".join(chunk) + f"\nend{kind}\n")
    return (
        "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
        "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
        "1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n"
        + "".join(blocks)
        + "endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend"
    ).encode()


@lru_cache(maxsize=64)
def _program(style: str, characters: frozenset[str]) -> FontProgram:
    """The font cut to `characters` (those the font has), once per process and set."""
    info = face(style)
    present = {c for c in characters if c in info.cids}
    font = _open(style)
    for tag in _DROPPED:  # unread: decompiling the layout tables was most of a cut's time
        if tag in font:
            del font[tag]
    options = ftsubset.Options(
        notdef_outline=True,
        recommended_glyphs=True,
        glyph_names=False,
        hinting=False,
        layout_features=[],
        name_IDs=["*"],
        name_languages=["*"],
    )
    options.drop_tables += _DROPPED
    subsetter = ftsubset.Subsetter(options)
    subsetter.populate(unicodes=[ord(c) for c in present])
    subsetter.subset(font)
    glyph_ids = {name: gid for gid, name in enumerate(font.getGlyphOrder())}
    cut_cmap = font.getBestCmap()
    by_cid = {info.cids[c]: c for c in present}
    cid_to_gid = bytearray(2 * (max(by_cid) + 1))
    for cid, char in by_cid.items():
        gid = glyph_ids[cut_cmap[ord(char)]]
        cid_to_gid[2 * cid : 2 * cid + 2] = gid.to_bytes(2, "big")
    out = BytesIO()
    font.save(out)
    return FontProgram(
        style=style,
        glyph_table=GlyphTable.read(out.getvalue()),
        glyph_ids={
            char: int.from_bytes(cid_to_gid[2 * cid : 2 * cid + 2]) for cid, char in by_cid.items()
        },
        cid_to_gid=zlib.compress(bytes(cid_to_gid), 9),
        widths=_widths_array({cid: info.advances[c] for cid, c in by_cid.items()}),
        to_unicode=zlib.compress(_to_unicode(by_cid), 9),
    )
