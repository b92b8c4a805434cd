"""Source Sans Pro for fpdf2, read and parsed once per process instead of once per PDF.

fpdf2's `add_font` parses the whole TrueType file (every glyph's metrics, the cmap) for each
document, and at output subsets it, which rewrites the parsed font in place: parsing and
subsetting were most of a document's CPU. Here, once per process and style:

- the font is reduced to what fpdf2 can draw: the glyphs its Unicode cmap reaches (every
  character the font has, French, "€" and foreign names alike), without the OpenType layout
  tables (fpdf2 drops them from every subset anyway), hinting and the digital signature;
- fpdf2 parses it once (`TTFFont`: metrics, widths, cmap), the template.

Each document then gets a copy of the template that shares those read-only tables and owns
what a document changes: its index, its subset map, its missing glyphs and a fresh lazily
loaded font object for fpdf2 to subset and embed. Same input, same bytes.
"""

from __future__ import annotations

import copy
from functools import cache
from importlib import resources
from io import BytesIO

from fontTools import subset as ftsubset
from fontTools.ttLib import TTFont
from fpdf import FPDF
from fpdf.fonts import SubsetMap, TTFFont

FAMILY = "SourceSansPro"
_PACKAGE = "font_source_sans_pro"
_FILES = {"": "SourceSansPro-Regular.ttf", "B": "SourceSansPro-Bold.ttf"}
_DROPPED = ["BASE", "DSIG", "GDEF", "GPOS", "GSUB", "JSTF", "MATH", "kern"]


@cache
def font_bytes(style: str) -> bytes:
    """The font file of `style` ("" or "B"), reduced to what fpdf2 draws (once per process)."""
    path = resources.files(_PACKAGE).joinpath("files", _FILES[style])
    font = TTFont(BytesIO(path.read_bytes()), recalcTimestamp=False)
    options = ftsubset.Options(
        notdef_outline=True,
        recommended_glyphs=True,
        glyph_names=True,
        hinting=False,
        layout_features=[],
        name_IDs=["*"],
        name_languages=["*"],
    )
    options.drop_tables += _DROPPED
    subsetter = ftsubset.Subsetter(options)
    subsetter.populate(unicodes=font.getBestCmap().keys())
    subsetter.subset(font)
    out = BytesIO()
    font.save(out)
    return out.getvalue()


@cache
def _template(style: str) -> TTFFont:
    """fpdf2's parsed font (metrics, widths, cmap), once per process and style."""
    return TTFFont(FPDF(), BytesIO(font_bytes(style)), f"{FAMILY.lower()}{style}", style)  # type: ignore[arg-type]


def add_source_sans_pro(pdf: FPDF) -> None:
    """Make Source Sans Pro (regular and bold) available to `pdf` as `FAMILY`."""
    for style in _FILES:
        template = _template(style)
        font = copy.copy(template)
        font.i = len(pdf.fonts) + 1
        font.ttfont = TTFont(
            BytesIO(font_bytes(style)), recalcTimestamp=False, recalcBBoxes=False, lazy=True
        )
        font.missing_glyphs = []
        font.biggest_size_pt = 0
        font._hbfont = None
        font.subset = SubsetMap(font)
        pdf.fonts[template.fontkey] = font
