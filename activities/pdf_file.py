"""A PDF file written object by object, and its PDF/A-3B parts (XMP metadata, sRGB output
intent, associated files): what the billing documents need and nothing more.

The pages' content streams come from `activities.pdf_layout`; the fonts from
`activities.pdf_fonts` (Type0 / CIDFontType2, embedded). Deterministic: no clock is read, the
dates are the caller's, and the file identifier (/ID) is the MD5 of the file's body, so the
same document gives the same bytes and two documents never share an identifier.

PDF/A-3B (ISO 19005-3, level B) as this writer meets it: every font embedded with widths equal
to its program's, no .notdef reference (`pdf_fonts` refuses what the font cannot draw), no
transparency, colours in DeviceRGB with the sRGB output intent, XMP metadata (unfiltered)
matching the document information dictionary, the file identifier, and each embedded file
with its MIME type, modification date and AFRelationship, listed in the catalog's /AF.
"""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from importlib import resources
from xml.sax.saxutils import escape

from activities.pdf_fonts import Face

A4 = (595.28, 841.89)
"""A4 portrait, in points."""


def pdf_string(text: str) -> bytes:
    """A PDF text string: literal for printable ASCII, else UTF-16BE with its BOM."""
    if text.isascii() and text.isprintable():
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
        return f"({escaped})".encode()
    return b"<feff" + text.encode("utf-16-be").hex().encode() + b">"


def pdf_date(at: datetime) -> str:
    """D:YYYYMMDDHHmmSS+HH'mm' (the caller's aware datetime)."""
    offset = at.strftime("%z") or "+0000"
    return f"D:{at:%Y%m%d%H%M%S}{offset[:3]}'{offset[3:]}'"


def _xmp_date(at: datetime) -> str:
    text = at.isoformat(timespec="seconds")
    return text if at.utcoffset() is not None else text + "Z"


@dataclass(frozen=True)
class Metadata:
    """The document information dictionary (and, for PDF/A, the same in XMP)."""

    title: str
    author: str
    subject: str
    keywords: str
    creator: str
    created: datetime
    lang: str = "fr-FR"
    producer: str = "contracting"


@dataclass(frozen=True)
class Attachment:
    """A file embedded in a PDF/A-3 and associated with the document (catalog /AF)."""

    name: str
    data: bytes
    mime_type: str
    description: str
    relationship: str
    """AFRelationship: Data, Source, Alternative, Supplement or Unspecified."""


@dataclass(frozen=True)
class PdfA3:
    """Make the file a PDF/A-3B: its attachments and the XMP its attachments' standard adds
    (rdf:Description elements, extension schemas included)."""

    attachments: Sequence[Attachment] = ()
    xmp_descriptions: str = ""
    page_mode: str | None = None


@dataclass(frozen=True)
class FontUse:
    """A font resource of the document: the face and the characters its pages draw."""

    resource: str
    face: Face
    used: frozenset[str]


@dataclass
class _Objects:
    bodies: list[bytes] = field(default_factory=list)

    def reserve(self) -> int:
        self.bodies.append(b"")
        return len(self.bodies)

    def set(self, number: int, body: bytes) -> int:
        self.bodies[number - 1] = body
        return number

    def add(self, body: bytes) -> int:
        return self.set(self.reserve(), body)

    def stream(self, data: bytes, entries: str = "", *, deflated: bool = False) -> int:
        """A stream object; `deflated` when `data` is already zlib-compressed."""
        filter_ = " /Filter /FlateDecode" if deflated else ""
        head = f"<< /Length {len(data)}{filter_}{' ' if entries else ''}{entries} >>\nstream\n"
        return self.add(head.encode() + data + b"\nendstream")


@cache
def _srgb_profile() -> bytes:
    """The sRGB ICC profile, compressed (ICC, redistributable: data/sRGB2014.icc.LICENSE)."""
    data = resources.files("activities").joinpath("data", "sRGB2014.icc").read_bytes()
    return zlib.compress(data, 9)


def _font(objects: _Objects, use: FontUse) -> int:
    face, program = use.face, use.face.program(use.used)
    embedded = program.font_file(use.used)
    name = embedded.postscript_name
    font_file = objects.stream(embedded.data, f"/Length1 {embedded.length}", deflated=True)
    x_min, y_min, x_max, y_max = face.bbox
    descriptor = objects.add(
        (
            f"<< /Type /FontDescriptor /FontName /{name} /Flags {face.flags} "
            f"/FontBBox [{x_min} {y_min} {x_max} {y_max}] /ItalicAngle {face.italic_angle:g} "
            f"/Ascent {face.ascent} /Descent {face.descent} /CapHeight {face.cap_height} "
            f"/StemV {face.stem_v} /MissingWidth {face.default_width} "
            f"/FontFile2 {font_file} 0 R >>"
        ).encode()
    )
    cid_to_gid = objects.stream(program.cid_to_gid, deflated=True)
    cid_font = objects.add(
        (
            f"<< /Type /Font /Subtype /CIDFontType2 /BaseFont /{name} "
            "/CIDSystemInfo << /Registry (Adobe) /Ordering (Identity) /Supplement 0 >> "
            f"/FontDescriptor {descriptor} 0 R /DW {face.default_width} "
            f"/CIDToGIDMap {cid_to_gid} 0 R /W "
        ).encode()
        + program.widths
        + b" >>"
    )
    to_unicode = objects.stream(program.to_unicode, deflated=True)
    return objects.add(
        (
            f"<< /Type /Font /Subtype /Type0 /BaseFont /{name} /Encoding /Identity-H "
            f"/DescendantFonts [{cid_font} 0 R] /ToUnicode {to_unicode} 0 R >>"
        ).encode()
    )


def _alt(text: str) -> str:
    return f'<rdf:Alt><rdf:li xml:lang="x-default">{escape(text)}</rdf:li></rdf:Alt>'


def _xmp(meta: Metadata, pdfa: PdfA3) -> bytes:
    created = _xmp_date(meta.created)
    return f"""<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="" xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/">
   <pdfaid:part>3</pdfaid:part>
   <pdfaid:conformance>B</pdfaid:conformance>
  </rdf:Description>
  <rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">
   <dc:format>application/pdf</dc:format>
   <dc:title>{_alt(meta.title)}</dc:title>
   <dc:creator><rdf:Seq><rdf:li>{escape(meta.author)}</rdf:li></rdf:Seq></dc:creator>
   <dc:description>{_alt(meta.subject)}</dc:description>
   <dc:language><rdf:Bag><rdf:li>{escape(meta.lang)}</rdf:li></rdf:Bag></dc:language>
  </rdf:Description>
  <rdf:Description rdf:about="" xmlns:pdf="http://ns.adobe.com/pdf/1.3/">
   <pdf:Producer>{escape(meta.producer)}</pdf:Producer>
   <pdf:Keywords>{escape(meta.keywords)}</pdf:Keywords>
  </rdf:Description>
  <rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/">
   <xmp:CreatorTool>{escape(meta.creator)}</xmp:CreatorTool>
   <xmp:CreateDate>{created}</xmp:CreateDate>
   <xmp:ModifyDate>{created}</xmp:ModifyDate>
   <xmp:MetadataDate>{created}</xmp:MetadataDate>
  </rdf:Description>
{pdfa.xmp_descriptions} </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>""".encode()


def _attachment(objects: _Objects, attachment: Attachment, modified: str) -> int:
    mime = attachment.mime_type.replace("/", "#2F")
    checksum = hashlib.md5(attachment.data, usedforsecurity=False).hexdigest()
    stream = objects.stream(
        zlib.compress(attachment.data, 6),
        f"/Type /EmbeddedFile /Subtype /{mime} "
        f"/Params << /ModDate ({modified}) /Size {len(attachment.data)} /CheckSum <{checksum}> >>",
        deflated=True,
    )
    name = pdf_string(attachment.name).decode()
    return objects.add(
        (
            f"<< /Type /Filespec /F {name} /UF {name} /EF << /F {stream} 0 R /UF {stream} 0 R >> "
            f"/Desc {pdf_string(attachment.description).decode()} "
            f"/AFRelationship /{attachment.relationship} >>"
        ).encode()
    )


def write_pdf(
    pages: Sequence[bytes],
    fonts: Sequence[FontUse],
    meta: Metadata,
    pdfa: PdfA3 | None = None,
    *,
    size: tuple[float, float] = A4,
) -> bytes:
    """The file: `pages` (content streams, uncompressed), fonts, metadata, PDF/A-3 parts."""
    objects = _Objects()
    catalog = objects.reserve()
    page_tree = objects.reserve()
    font_refs = " ".join(f"/{use.resource} {_font(objects, use)} 0 R" for use in fonts)
    resources_ = objects.add(f"<< /Font << {font_refs} >> >>".encode())
    kids = []
    for content in pages:
        contents = objects.stream(zlib.compress(content, 6), deflated=True)
        kids.append(
            objects.add(
                (
                    f"<< /Type /Page /Parent {page_tree} 0 R /MediaBox [0 0 {size[0]} {size[1]}] "
                    f"/Resources {resources_} 0 R /Contents {contents} 0 R >>"
                ).encode()
            )
        )
    objects.set(
        page_tree,
        (
            f"<< /Type /Pages /Kids [{' '.join(f'{kid} 0 R' for kid in kids)}] "
            f"/Count {len(kids)} >>"
        ).encode(),
    )
    created = pdf_date(meta.created)
    info = objects.add(
        b"<< /Title "
        + pdf_string(meta.title)
        + b" /Author "
        + pdf_string(meta.author)
        + b" /Subject "
        + pdf_string(meta.subject)
        + b" /Keywords "
        + pdf_string(meta.keywords)
        + b" /Creator "
        + pdf_string(meta.creator)
        + b" /Producer "
        + pdf_string(meta.producer)
        + f" /CreationDate ({created}) /ModDate ({created}) >>".encode()
    )
    entries = f"/Type /Catalog /Pages {page_tree} 0 R /Lang {pdf_string(meta.lang).decode()}"
    if pdfa is not None:
        metadata = objects.stream(_xmp(meta, pdfa), "/Type /Metadata /Subtype /XML")
        icc = objects.stream(_srgb_profile(), "/N 3 /Alternate /DeviceRGB", deflated=True)
        intent = objects.add(
            (
                "<< /Type /OutputIntent /S /GTS_PDFA1 /OutputConditionIdentifier (sRGB) "
                "/OutputCondition (IEC 61966-2-1:1999) /RegistryName (http://www.color.org) "
                f"/Info (sRGB2014 \\(v2\\)) /DestOutputProfile {icc} 0 R >>"
            ).encode()
        )
        entries += f" /Metadata {metadata} 0 R /OutputIntents [{intent} 0 R]"
        specs = [(a.name, _attachment(objects, a, created)) for a in pdfa.attachments]
        if specs:
            names = " ".join(f"{pdf_string(n).decode()} {ref} 0 R" for n, ref in sorted(specs))
            entries += f" /Names << /EmbeddedFiles << /Names [{names}] >> >>"
            entries += f" /AF [{' '.join(f'{ref} 0 R' for _, ref in specs)}]"
        if pdfa.page_mode:
            entries += f" /PageMode /{pdfa.page_mode}"
    objects.set(catalog, f"<< {entries} >>".encode())
    return _serialize(objects, catalog=catalog, info=info)


def _serialize(objects: _Objects, *, catalog: int, info: int) -> bytes:
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects.bodies, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number
        out += body
        out += b"\nendobj\n"
    file_id = hashlib.md5(out, usedforsecurity=False).hexdigest()
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(offsets) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += (
        f"trailer\n<< /Size {len(offsets) + 1} /Root {catalog} 0 R /Info {info} 0 R "
        f"/ID [<{file_id}> <{file_id}>] >>\nstartxref\n{xref}\n%%EOF\n"
    ).encode()
    return bytes(out)
