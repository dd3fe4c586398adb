"""A small drawing surface for rendered invoices: pages of text, rules and images written as PDF operators
with the embedded fonts of `pdf_fonts`, line wrapping by precomputed widths, and the result as a `Part`
(pages with the objects they use) or a whole PDF."""

from __future__ import annotations

import functools
import io
import zlib
from dataclasses import dataclass

from parcours_ingest.domain.pdf_fonts import Face, face
from parcours_ingest.domain.pdf_objects import PAGES, Part, PartBuilder, PdfWriter, deflated, number, stream, text_string

A4 = (595.2755905511812, 841.8897637795277)
MM = 72 / 25.4
Colour = tuple[float, float, float]
BLACK: Colour = (0, 0, 0)


def hex_colour(text: str) -> Colour:
    value = int(text.lstrip("#"), 16)
    return ((value >> 16) & 255) / 255, ((value >> 8) & 255) / 255, (value & 255) / 255


@dataclass(frozen=True)
class Image:
    width: int
    height: int
    rgb: bytes  # deflated
    alpha: bytes | None  # deflated soft mask, or None


@functools.lru_cache(maxsize=32)
def image_of(data: bytes, max_pixels: int, max_size: tuple[int, int]) -> Image | None:
    """A PNG, JPEG or GIF as an RGB image with its alpha (a PDF/A with an sRGB output intent may not carry
    CMYK), at most `max_size`; None when it cannot be read. Kept per process: a tenant's logo is decoded once."""
    from PIL import Image as PILImage

    try:
        with PILImage.open(io.BytesIO(data)) as image:
            if image.width * image.height > max_pixels:
                return None
            image.load()
            transparent = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
            image = image.convert("RGBA" if transparent else "RGB")
            image.thumbnail(max_size)
            alpha = zlib.compress(image.getchannel("A").tobytes()) if transparent else None
            return Image(image.width, image.height, zlib.compress(image.convert("RGB").tobytes()), alpha)
    except (OSError, ValueError, PILImage.DecompressionBombError):
        return None


class Canvas:
    def __init__(self, size: tuple[float, float] = A4) -> None:
        self.size = size
        self.pages: list[list[bytes]] = []
        self.images: list[Image] = []
        self.fonts: dict[bool, set[int]] = {}  # bold → glyphs used
        self.page_images: list[set[int]] = []
        self.new_page()

    def new_page(self) -> None:
        self.pages.append([])
        self.page_images.append(set())
        self.colour = BLACK  # the fill colour in force (a page starts black)

    def text(self, x: float, y: float, text: str, *, size: float, bold: bool = False, colour: Colour = BLACK,
             align: str = "left") -> None:
        font = face(bold)
        if align != "left":
            width = font.width(text, size)
            x -= width if align == "right" else width / 2
        codes = font.encode(text, self.fonts.setdefault(bold, set()))
        colour_op = b""
        if colour != self.colour:  # the fill colour outlives ET: set only when it changes
            colour_op, self.colour = b"%s %s %s rg " % tuple(number(c) for c in colour), colour
        self.pages[-1].append(b"BT %s/F%d %s Tf 1 0 0 1 %s %s Tm %sTj ET" % (
            colour_op, bold, number(size), number(round(x, 3)), number(round(y, 3)), codes))

    def line(self, x1: float, y1: float, x2: float, y2: float, *, width: float, colour: Colour) -> None:
        self.pages[-1].append(b"%s %s %s RG %s w %s %s m %s %s l S" % (
            *(number(c) for c in colour), number(width),
            *(number(round(v, 3)) for v in (x1, y1, x2, y2))))

    def image(self, image: Image, x: float, y: float, width: float, height: float) -> None:
        if image not in self.images:
            self.images.append(image)
        index = self.images.index(image)
        self.page_images[-1].add(index)
        self.pages[-1].append(b"q %s 0 0 %s %s %s cm /Im%d Do Q" % (
            *(number(round(v, 3)) for v in (width, height, x, y)), index))

    def part(self) -> Part:
        builder = PartBuilder()
        fonts = {bold: face(bold).objects(builder, used) for bold, used in sorted(self.fonts.items())}
        font_dict = (b"/Font<<", *(s for bold, ref in fonts.items() for s in (b"/F%d " % bold, ref)), b">>")
        images = [self._image(builder, image) for image in self.images]
        pages = []
        for operations, used_images in zip(self.pages, self.page_images):
            contents = builder.add(*deflated((), b"\n".join(operations)))
            xobjects = (b"/XObject<<", *(s for i in sorted(used_images) for s in (b"/Im%d " % i, images[i])),
                        b">>") if used_images else ()
            pages.append(builder.add(b"<</Type/Page/Parent ", PAGES, b"/MediaBox[0 0 %s %s]/Resources<<" % (
                number(round(self.size[0], 4)), number(round(self.size[1], 4))), *font_dict, *xobjects,
                b"/ProcSet[/PDF/Text/ImageC]>>/Contents ", contents, b">>"))
        return builder.part(pages)

    @staticmethod
    def _image(builder: PartBuilder, image: Image) -> int:
        head = b"/Type/XObject/Subtype/Image/Width %d/Height %d/BitsPerComponent 8/Filter/FlateDecode" % (
            image.width, image.height)
        mask = ()
        if image.alpha is not None:
            mask = (b"/SMask ", builder.add(*stream((head, b"/ColorSpace/DeviceGray"), image.alpha)))
        return builder.add(*stream((head, b"/ColorSpace/DeviceRGB", *mask), image.rgb))


def document(part: Part, *, title: str, author: str, language: str) -> bytes:
    """A part alone as a PDF, with its title, author and language (the same bytes for the same part)."""
    writer = PdfWriter(b"1.4")
    pages = writer.place(part)
    info = (b"/Title", text_string(title), b"/Author", text_string(author), b"/Subject", text_string(title),
            b"/Producer(Parcours)/Creator(Parcours)")
    return writer.finish(pages=pages, catalog=(b"/Lang", text_string(language)), info=info)


def wrap(text: str, font: Face, size: float, width: float) -> list[str]:
    """Greedy line breaking on spaces by the font's widths; a word longer than a line is cut."""
    words, lines, current = text.split(), [], ""
    space = font.width(" ", size)
    current_width = 0.0
    for word in words:
        word_width = font.width(word, size)
        if current and current_width + space + word_width <= width:
            current, current_width = f"{current} {word}", current_width + space + word_width
            continue
        if current:
            lines.append(current)
        while word_width > width and len(word) > 1:
            cut, taken = 1, font.width(word[0], size)
            while cut < len(word) and taken + font.width(word[cut], size) <= width:
                taken += font.width(word[cut], size)
                cut += 1
            lines.append(word[:cut])
            word = word[cut:]
            word_width = font.width(word, size)
        current, current_width = word, word_width
    if current:
        lines.append(current)
    return lines or [""]
