"""The per-document TrueType cut (activities/truetype_cut.py): the drawn glyphs' outlines and
the glyphs composites are made of survive, every other glyph is empty, the other tables and
the glyph numbering are untouched, and the file's checksums are right."""

from __future__ import annotations

from functools import cache
from io import BytesIO

from fontTools import subset
from fontTools.ttLib import TTFont

from activities import pdf_fonts
from activities.truetype_cut import GlyphTable


@cache
def _small_font() -> bytes:
    """Source Sans Pro cut by fontTools to a few characters, as pdf_fonts cuts its programs."""
    font = TTFont(BytesIO(pdf_fonts._font_file("")), recalcTimestamp=False)
    for tag in ("GPOS", "GSUB", "GDEF", "BASE", "DSIG"):
        del font[tag]
    options = subset.Options(hinting=False, notdef_outline=True, layout_features=[])
    subsetter = subset.Subsetter(options)
    subsetter.populate(text="Aaeéèb€")
    subsetter.subset(font)
    out = BytesIO()
    font.save(out)
    return out.getvalue()


def test_a_cut_keeps_the_drawn_glyphs_and_their_components_and_empties_the_rest():
    original_bytes = _small_font()
    original = TTFont(BytesIO(original_bytes))
    cmap, glyf = original.getBestCmap(), original["glyf"]
    ids = {name: gid for gid, name in enumerate(original.getGlyphOrder())}
    table = GlyphTable.read(original_bytes)

    keep = table.closure([ids[cmap[ord(c)]] for c in "éA"])
    composites = [gid for gid in keep if table.components[gid]]
    assert composites, "é is drawn from components in Source Sans Pro"
    assert all(set(table.components[gid]) <= keep for gid in composites)
    assert 0 in keep  # .notdef stays

    cut = TTFont(BytesIO(table.cut(keep)), checkChecksums=2)  # raises on a bad checksum
    cut.ensureDecompiled()
    assert cut.getGlyphOrder() == original.getGlyphOrder()
    assert cut["hmtx"].metrics == original["hmtx"].metrics
    assert cut.getBestCmap() == cmap
    assert cut["head"].indexToLocFormat == 1
    for gid, name in enumerate(original.getGlyphOrder()):
        if gid in keep:
            assert cut["glyf"][name].getCoordinates(cut["glyf"]) == glyf[name].getCoordinates(
                glyf
            ), name
        else:
            assert cut["glyf"][name].numberOfContours == 0, name
    assert len(table.cut(keep)) < len(table.cut(frozenset(range(len(table.glyphs)))))


def test_a_cut_is_the_same_bytes_for_the_same_glyphs():
    table = GlyphTable.read(_small_font())
    assert table.cut(table.closure([3, 1])) == table.cut(table.closure([1, 3]))
