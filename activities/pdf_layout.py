"""Pages laid out top to bottom, in millimetres: text lines, wrapped paragraphs, tables.

What the billing documents draw is known text in a known form (a title, paragraphs, label and
value lines, tables of a few columns), so the layout is direct: each string is measured once
with the font's advance widths (`pdf_fonts.Face`) and broken at spaces; the result is written
as content stream operators. A page ends when the next line or table row would cross the
bottom margin; a table's heading row is repeated at the top of the next page. Footers are
drawn last, when the page count is known.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from activities.pdf_file import FontUse
from activities.pdf_fonts import Face, face

MM = 72 / 25.4
"""Points per millimetre."""

Align = Literal["LEFT", "RIGHT", "CENTER"]
RGB = tuple[int, int, int]
_RESOURCES = {"": "F1", "B": "F2"}


def _nfc(text: str) -> str:
    """Composed characters ("é", not "e" + combining acute): one glyph each, as drawn."""
    return text if unicodedata.is_normalized("NFC", text) else unicodedata.normalize("NFC", text)


@dataclass(frozen=True)
class Font:
    bold: bool = False
    size: float = 9.5
    """Points."""

    @property
    def style(self) -> str:
        return "B" if self.bold else ""


@dataclass(frozen=True)
class Column:
    width: float
    align: Align = "LEFT"


class Flow:
    """A4 portrait pages filled from the top margin down; `y` is the cursor, in mm."""

    def __init__(
        self,
        *,
        left: float = 18,
        top: float = 16,
        right: float = 18,
        bottom: float = 18,
        cell_margin: float = 1,
        page: tuple[float, float] = (210, 297),
    ) -> None:
        self.page_width, self.page_height = page
        self.left, self.top, self.right = left, top, right
        self.limit = self.page_height - bottom
        self.cell_margin = cell_margin
        self.epw = self.page_width - left - right
        self.pages: list[list[bytes]] = []
        self._ops: list[bytes] = []
        """The operators of the page being drawn."""
        self._used: dict[str, set[str]] = {style: set() for style in _RESOURCES}
        self.y = top
        self.add_page()

    # --- Primitives -------------------------------------------------------------------------

    def add_page(self) -> None:
        self._ops = []
        self.pages.append(self._ops)
        self.y = self.top

    def width(self, text: str, font: Font) -> float:
        """`text`'s width in mm; raises `UnprintableText` for a character without a glyph."""
        shape = face(font.style)
        try:
            return shape.width(text, font.size) / MM
        except KeyError:
            shape.check(text)
            raise

    def text(self, x: float, baseline: float, text: str, font: Font) -> None:
        """Draw `text` with its baseline at (`x`, `baseline`), mm from the top left."""
        if not text:
            return
        shape: Face = face(font.style)
        self._used[font.style].update(text)
        self._ops.append(
            b"BT /%s %.2f Tf %.2f %.2f Td <%s> Tj ET\n"
            % (
                _RESOURCES[font.style].encode(),
                font.size,
                x * MM,
                (self.page_height - baseline) * MM,
                shape.encode(text),
            )
        )

    def fill(self, x: float, y: float, w: float, h: float, color: RGB) -> None:
        r, g, b = (c / 255 for c in color)
        self._ops.append(
            b"q %.4f %.4f %.4f rg %.2f %.2f %.2f %.2f re f Q\n"
            % (r, g, b, x * MM, (self.page_height - y - h) * MM, w * MM, h * MM)
        )

    def hline(self, x1: float, x2: float, y: float, width: float = 0.2) -> None:
        at = (self.page_height - y) * MM
        self._ops.append(
            b"q 0 0 0 RG %.2f w %.2f %.2f m %.2f %.2f l S Q\n"
            % (width * MM, x1 * MM, at, x2 * MM, at)
        )

    # --- Text in boxes ----------------------------------------------------------------------

    def wrap(self, text: str, width: float, font: Font) -> list[str]:
        """`text` broken into lines no wider than `width` mm: at its newlines, at spaces, and
        inside a word only when the word alone is wider than a line."""
        lines: list[str] = []
        space = self.width(" ", font)
        for paragraph in _nfc(text).split("\n"):
            line, line_width = "", 0.0
            for word in paragraph.split(" "):
                word_width = self.width(word, font)
                if line and line_width + space + word_width <= width:
                    line, line_width = f"{line} {word}", line_width + space + word_width
                    continue
                if line:
                    lines.append(line)
                while word_width > width and len(word) > 1:
                    cut = self._fit(word, width, font)
                    lines.append(word[:cut])
                    word = word[cut:]
                    word_width = self.width(word, font)
                line, line_width = word, word_width
            lines.append(line)
        return lines

    def _fit(self, word: str, width: float, font: Font) -> int:
        """How many of `word`'s first characters fit in `width` (at least one)."""
        total = 0.0
        for index, char in enumerate(word):
            total += self.width(char, font)
            if total > width:
                return max(index, 1)
        return len(word)

    def aligned_x(
        self, x: float, w: float, text: str, font: Font, align: Align, pad: float
    ) -> float:
        """Where `text` starts in the box from `x`, `w` mm wide, `pad` mm inside its edges."""
        if align == "LEFT":
            return x + pad
        text_width = self.width(text, font)
        if align == "RIGHT":
            return x + w - pad - text_width
        return x + (w - text_width) / 2

    def cell(
        self, x: float, w: float, h: float, text: str, font: Font, align: Align = "LEFT"
    ) -> None:
        """One line of text in the box (`x`, `y`, `w`, `h`), vertically centred; `y` stays."""
        text = _nfc(text)
        baseline = self.y + h / 2 + 0.3 * font.size / MM
        self.text(self.aligned_x(x, w, text, font, align, self.cell_margin), baseline, text, font)

    def lines(self, x: float, w: float, h: float, text: str, font: Font) -> None:
        """`text` wrapped in `w` mm from `x`, one line every `h` mm from the cursor down,
        onto a new page when a line would cross the bottom margin; the cursor ends below."""
        for line in self.wrap(text, w - 2 * self.cell_margin, font):
            self.ensure(h)
            self.cell(x, w, h, line, font)
            self.y += h

    def ensure(self, h: float) -> bool:
        """Start a new page unless `h` mm fit above the bottom margin; True on a new page."""
        if self.y + h > self.limit:
            self.add_page()
            return True
        return False

    # --- Tables -----------------------------------------------------------------------------

    def table(
        self,
        heading: Sequence[str],
        rows: Sequence[Sequence[str]],
        columns: Sequence[Column],
        *,
        font: Font,
        heading_fill: RGB,
        line_height: float,
        padding: tuple[float, float],
        rules: bool,
        middle: bool,
    ) -> None:
        """A table from the left margin: a bold heading row on `heading_fill` (repeated on
        each page the table spans), cells wrapped, `padding` (vertical, horizontal) mm, a
        rule between rows when `rules`, cells centred vertically when `middle`."""
        bold = Font(bold=True, size=font.size)
        pad_v, pad_h = padding

        def layout(cells: Sequence[str], cell_font: Font) -> tuple[list[list[str]], float]:
            wrapped = [
                self.wrap(text, column.width - 2 * pad_h, cell_font)
                for text, column in zip(cells, columns, strict=True)
            ]
            return wrapped, max(len(w) for w in wrapped) * line_height + 2 * pad_v

        def draw(wrapped: list[list[str]], height: float, cell_font: Font, fill: bool) -> None:
            if fill:
                self.fill(self.left, self.y, sum(c.width for c in columns), height, heading_fill)
            x = self.left
            for cell_lines, column in zip(wrapped, columns, strict=True):
                top = self.y + pad_v
                if middle:
                    top = self.y + (height - len(cell_lines) * line_height) / 2
                for index, line in enumerate(cell_lines):
                    baseline = (
                        top + index * line_height + line_height / 2 + 0.3 * cell_font.size / MM
                    )
                    self.text(
                        self.aligned_x(x, column.width, line, cell_font, column.align, pad_h),
                        baseline,
                        line,
                        cell_font,
                    )
                x += column.width
            self.y += height

        head, head_height = layout(heading, bold)
        self.ensure(head_height)
        draw(head, head_height, bold, True)
        for row in rows:
            wrapped, height = layout(row, font)
            if self.ensure(height):
                draw(head, head_height, bold, True)
            if rules:
                self.hline(self.left, self.left + sum(c.width for c in columns), self.y)
            draw(wrapped, height, font, False)

    # --- The file ---------------------------------------------------------------------------

    def finish(self, footer: Callable[[int, int], str], font: Font, y: float) -> list[bytes]:
        """The pages' content streams, each with its footer (`footer(page, pages)`) centred
        on the line at `y` mm."""
        self.y = y
        for number, page in enumerate(self.pages, start=1):
            self._ops = page
            self.cell(self.left, self.epw, 4, footer(number, len(self.pages)), font, "CENTER")
        return [b"".join(page) for page in self.pages]

    def fonts(self) -> list[FontUse]:
        """The fonts the pages draw, with the characters of each; raises `UnprintableText`
        if any text drawn, measured or not, has a character without a glyph."""
        uses = []
        for style, used in self._used.items():
            if not used:
                continue
            shape = face(style)
            shape.check("".join(sorted(used - shape.advances.keys())))
            uses.append(FontUse(_RESOURCES[style], shape, frozenset(used)))
        return uses
