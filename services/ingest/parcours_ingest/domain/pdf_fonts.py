"""The TrueType fonts of rendered invoices (Bitstream Vera, shipped with reportlab), read once per process:
string widths and glyph ids from its tables, and the PDF objects of a font embedded for PDF/A — a
Type0 font (Identity-H, so a glyph id is its code) whose widths and ToUnicode map are the same bytes for
every document; only the font program is cut to the glyphs a document uses (kept per glyph set)."""

from __future__ import annotations

import functools
import hashlib
import struct
import zlib
from array import array
from pathlib import Path

from parcours_ingest.domain.pdf_objects import PartBuilder, deflated, stream

# characters the font lacks that have a close glyph of their own
_SUBSTITUTES = {"\u202f": "\u00a0", "\u2009": " ", "\u2007": " ", "\u2011": "-", "\u2010": "-"}
# tables a PDF TrueType font program needs (PDF 32000 9.9); name, kern, hdmx, post… are left out
_KEPT_TABLES = (b"cvt ", b"fpgm", b"glyf", b"head", b"hhea", b"hmtx", b"loca", b"maxp", b"prep")


class Face:
    def __init__(self, path: Path) -> None:
        from reportlab.pdfbase.ttfonts import TTFontFile

        face = TTFontFile(str(path))
        self.name = face.name.decode("latin-1")
        scale = 1000 / face.unitsPerEm
        self.advances = [advance * scale for advance, _ in face.hmetrics]
        self.advances += [self.advances[-1]] * (face.numGlyphs - len(self.advances))
        self.glyphs: dict[str, int] = {chr(c): g for c, g in face.charToGlyph.items() if 0 < g < face.numGlyphs}
        for char, other in _SUBSTITUTES.items():
            if char not in self.glyphs and other in self.glyphs:
                self.glyphs[char] = self.glyphs[other]
        self.widths = {char: self.advances[g] for char, g in self.glyphs.items()}
        self._codes = {char: b"%04X" % g for char, g in self.glyphs.items()}
        # a character the font lacks is drawn as "?": PDF/A forbids showing the .notdef glyph
        self.missing_width, self._missing = self.widths["?"], self._codes["?"]
        data, tables = face._ttf_data, face.table
        self.tables = {tag.encode("latin-1"): data[t["offset"]:t["offset"] + t["length"]]
                       for tag, t in tables.items()}
        glyf = self.tables[b"glyf"]
        self.glyph_data = [glyf[start:end] for start, end in zip(face.glyphPos, face.glyphPos[1:])]
        self.descriptor = (b"/Flags 4/FontBBox[%d %d %d %d]/ItalicAngle %d/Ascent %d/Descent %d/CapHeight %d"
                           b"/StemV %d" % (*(round(v) for v in face.bbox), face.italicAngle, round(face.ascent),
                                           round(face.descent), round(face.capHeight), face.stemV))
        self.to_unicode = deflated((), _to_unicode(face.charToGlyph, face.numGlyphs))
        self._subsets = functools.lru_cache(maxsize=256)(self._subset)

    def width(self, text: str, size: float) -> float:
        widths, missing = self.widths, self.missing_width
        return sum(widths.get(c, missing) for c in text) * size / 1000

    def encode(self, text: str, used: set[int]) -> bytes:
        """`text` as a hex string of glyph ids; adds them to `used`."""
        codes, missing = self._codes, self._missing
        hexes = [codes.get(c, missing) for c in text]
        used.update(int(h, 16) for h in set(hexes))
        return b"<" + b"".join(hexes) + b">"

    def objects(self, builder: PartBuilder, used: set[int]) -> int:
        """The font's objects in `builder` for a document that uses the glyphs `used`; the Type0 font's index."""
        program, length, tag = self._subsets(frozenset(used))
        base = f"{tag}+{self.name}".encode()
        file = builder.add(*stream((b"/Filter/FlateDecode/Length1 %d" % length,), program))
        descriptor = builder.add(b"<</Type/FontDescriptor/FontName/", base, self.descriptor, b"/FontFile2 ", file,
                                 b">>")
        cid = builder.add(b"<</Type/Font/Subtype/CIDFontType2/BaseFont/", base,
                          b"/CIDSystemInfo<</Registry(Adobe)/Ordering(Identity)/Supplement 0>>/FontDescriptor ",
                          descriptor, b"/CIDToGIDMap/Identity/W", self._widths(used), b">>")
        unicode_map = builder.add(*self.to_unicode)
        return builder.add(b"<</Type/Font/Subtype/Type0/BaseFont/", base, b"/Encoding/Identity-H/DescendantFonts[",
                           cid, b"]/ToUnicode ", unicode_map, b">>")

    def _widths(self, used: set[int]) -> bytes:
        """The /W array of the glyphs used only (others are not drawn): short to write and to read back."""
        runs: list[list[int]] = []
        for gid in sorted(used):
            if runs and runs[-1][-1] == gid - 1:
                runs[-1].append(gid)
            else:
                runs.append([gid, gid])
        return b"[" + b"".join(b"%d[%s]" % (run[0], b" ".join(b"%d" % round(self.advances[g]) for g in run[1:]))
                               for run in runs) + b"]"

    def _subset(self, used: frozenset[int]) -> tuple[bytes, int, str]:
        """The font program with only the glyphs in `used` (and their components) drawn; glyph ids unchanged,
        so the widths and the ToUnicode map stay those of the whole font. Deflated, its length, a subset tag."""
        keep = set(used) | {0}  # .notdef stays drawn: a font program needs it
        todo = list(keep)
        while todo:  # a composite glyph draws others
            for component in _components(self.glyph_data[todo.pop()]):
                if component not in keep and component < len(self.glyph_data):
                    keep.add(component)
                    todo.append(component)
        glyf, loca, offset = [], array("I"), 0
        for gid, data in enumerate(self.glyph_data):
            loca.append(offset)
            if gid in keep and data:
                data += b"\0" * (-len(data) % 4)
                glyf.append(data)
                offset += len(data)
        loca.append(offset)
        if struct.pack("=I", 1) != struct.pack(">I", 1):
            loca.byteswap()
        tables = dict((tag, self.tables[tag]) for tag in _KEPT_TABLES if tag in self.tables)
        tables[b"glyf"], tables[b"loca"] = b"".join(glyf), loca.tobytes()
        head = bytearray(tables[b"head"])
        head[8:12] = b"\0\0\0\0"  # checkSumAdjustment, set below
        head[50:52] = struct.pack(">h", 1)  # long loca offsets
        tables[b"head"] = bytes(head)
        font = _sfnt(tables)
        digest = hashlib.sha256(font).digest()
        tag = "".join(chr(65 + b % 26) for b in digest[:6])
        return zlib.compress(font, 1), len(font), tag  # level 1: a third of level 6's CPU for 3 % more bytes


def _components(data: bytes) -> list[int]:
    if len(data) < 10 or struct.unpack_from(">h", data)[0] >= 0:
        return []
    found, position = [], 10
    while True:
        flags, glyph = struct.unpack_from(">HH", data, position)
        found.append(glyph)
        position += 4 + (4 if flags & 0x0001 else 2)
        position += 8 if flags & 0x0080 else 4 if flags & 0x0040 else 2 if flags & 0x0008 else 0
        if not flags & 0x0020:
            return found


def _checksum(data: bytes) -> int:
    data += b"\0" * (-len(data) % 4)
    values = array("I", data)
    if struct.pack("=I", 1) != struct.pack(">I", 1):
        values.byteswap()
    return sum(values) & 0xFFFFFFFF


def _sfnt(tables: dict[bytes, bytes]) -> bytes:
    count = len(tables)
    power = 1 << (count.bit_length() - 1)
    header = struct.pack(">IHHHH", 0x00010000, count, power * 16, power.bit_length() - 1, count * 16 - power * 16)
    offset = 12 + 16 * count
    records, bodies = [], []
    for tag in sorted(tables):
        data = tables[tag]
        records.append(struct.pack(">4sIII", tag, _checksum(data), offset, len(data)))
        padded = data + b"\0" * (-len(data) % 4)
        bodies.append(padded)
        offset += len(padded)
    font = bytearray(header + b"".join(records) + b"".join(bodies))
    head = 12 + 16 * count + sum(len(b) for tag, b in zip(sorted(tables), bodies) if tag < b"head")
    struct.pack_into(">I", font, head + 8, (0xB1B0AFBA - _checksum(bytes(font))) & 0xFFFFFFFF)
    return bytes(font)


def _to_unicode(char_to_glyph: dict[int, int], glyphs: int) -> bytes:
    first: dict[int, int] = {}
    for code, gid in sorted(char_to_glyph.items()):
        if 0 < gid < glyphs and code >= 0x20:
            first.setdefault(gid, code)
    entries = [b"<%04X> <%s>" % (gid, chr(code).encode("utf-16-be").hex().upper().encode())
               for gid, code in sorted(first.items())]
    blocks = [b"%d beginbfchar\n%s\nendbfchar" % (len(entries[i:i + 100]), b"\n".join(entries[i:i + 100]))
              for i in range(0, len(entries), 100)]
    return (b"/CIDInit/ProcSet findresource begin\n12 dict begin\nbegincmap\n/CIDSystemInfo<</Registry(Adobe)"
            b"/Ordering(UCS)/Supplement 0>>def\n/CMapName/Adobe-Identity-UCS def\n/CMapType 2 def\n"
            b"1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n" + b"\n".join(blocks) +
            b"\nendcmap\nCMapName currentdict/CMap defineresource pop\nend\nend")


@functools.lru_cache(maxsize=2)
def face(bold: bool = False) -> Face:
    from reportlab import rl_config

    return Face(Path(rl_config.__file__).parent / "fonts" / ("VeraBd.ttf" if bold else "Vera.ttf"))
