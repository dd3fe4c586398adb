"""PDF objects written by our own small code: a `Part` is a set of pages with the objects they use, ready
to be numbered into any document; `PdfWriter` writes the document in one pass (objects, xref, trailer).
Parts come from our renderer or from a stored PDF (CGV, annex, pages sent with an invoice) read once per
process with pypdf and kept by SHA-256: composing a Factur-X parses nothing it has seen before and copies
the pages' streams as they are (no inflate, no re-encode)."""

from __future__ import annotations

import hashlib
import io
import threading
import zlib
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

PAGES = -1  # a reference to the page tree root of the document a part is placed in

# an object's body: bytes, with references between them (int: a local index in its part, or PAGES)
Segments = tuple


@dataclass(frozen=True)
class Part:
    objects: tuple[Segments, ...]
    pages: tuple[int, ...]  # local indexes of the page objects, in order
    size: int = 0  # bytes held, for the cache's bound


class PartBuilder:
    def __init__(self) -> None:
        self.objects: list[Segments] = []

    def add(self, *segments: bytes | int) -> int:
        self.objects.append(segments)
        return len(self.objects) - 1

    def reserve(self) -> int:
        return self.add()

    def set(self, index: int, *segments: bytes | int) -> None:
        self.objects[index] = segments

    def part(self, pages: Iterable[int]) -> Part:
        objects = tuple(self.objects)
        size = sum(len(s) for o in objects for s in o if isinstance(s, bytes))
        return Part(objects, tuple(pages), size)


def stream(head: tuple, data: bytes) -> tuple:
    """The segments of a stream object: `head` is its dictionary's entries (segments, no << >>)."""
    return (b"<<", *head, b"/Length %d>>stream\n" % len(data), data, b"\nendstream")


def deflated(head: tuple, data: bytes, level: int = 6) -> tuple:
    return stream((*head, b"/Filter/FlateDecode"), zlib.compress(data, level))


_REGULAR = frozenset(range(0x21, 0x7F)) - frozenset(b"()<>[]{}/%#")


def name(text: str) -> bytes:
    """A PDF name (with its slash), characters outside the regular ones written #xx."""
    raw = text.encode("utf-8")
    return b"/" + b"".join(bytes((c,)) if c in _REGULAR else b"#%02X" % c for c in raw)


def text_string(text: str) -> bytes:
    """A PDF text string: literal when ASCII, UTF-16BE with its byte order mark otherwise."""
    if text.isascii():
        escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)").replace("\r", "\\r")
        return b"(" + escaped.encode("ascii").replace(b"\n", b"\\n") + b")"
    return b"<FEFF" + text.encode("utf-16-be").hex().upper().encode() + b">"


def number(value: float) -> bytes:
    """As reportlab writes numbers: at most 6 decimals, no trailing zeros, no leading zero (.5)."""
    if value == int(value):
        return b"%d" % value
    text = (b"%.6f" % value).rstrip(b"0").rstrip(b".")
    return text.replace(b"0.", b".", 1) if text.startswith((b"0.", b"-0.")) else text


class PdfWriter:
    """One document, written as it goes: place parts, add objects, then `finish`."""

    def __init__(self, version: bytes = b"1.7") -> None:
        self.chunks: list[bytes] = [b"%PDF-" + version + b"\n%\xe2\xe3\xcf\xd3\n"]
        self.position = len(self.chunks[0])
        self.offsets: dict[int, int] = {}
        self.count = 0
        self.pages_root = self.reserve()

    def reserve(self) -> int:
        self.count += 1
        return self.count

    def add(self, *segments: bytes | int) -> int:
        """A new object; int segments are object numbers here."""
        number_ = self.reserve()
        self.write(number_, *segments)
        return number_

    def write(self, number_: int, *segments: bytes | int) -> None:
        body = b"".join(s if isinstance(s, bytes) else b"%d 0 R" % s for s in segments)
        chunk = b"%d 0 obj\n%s\nendobj\n" % (number_, body)
        self.offsets[number_] = self.position
        self.chunks.append(chunk)
        self.position += len(chunk)

    def place(self, part: Part) -> list[int]:
        """Writes the part's objects; the numbers of its pages."""
        base = self.count + 1
        self.count += len(part.objects)
        root = self.pages_root
        for index, segments in enumerate(part.objects):
            self.write(base + index, *(s if isinstance(s, bytes) else (root if s == PAGES else base + s)
                                       for s in segments))
        return [base + p for p in part.pages]

    def finish(self, *, pages: list[int], catalog: tuple = (), info: tuple = (), identifier: bytes | None = None) -> bytes:
        """The whole document; its /ID is `identifier`, or the hash of its objects (the same bytes each time)."""
        kids = b" ".join(b"%d 0 R" % p for p in pages)
        self.write(self.pages_root, b"<</Type/Pages/Count %d/Kids[%s]>>" % (len(pages), kids))
        root = self.add(b"<</Type/Catalog/Pages ", self.pages_root, *catalog, b">>")
        info_ref = self.add(b"<<", *info, b">>") if info else None
        xref = self.position
        identifier = identifier or hashlib.sha256(b"".join(self.chunks)).digest()[:16]
        lines = [b"xref\n0 %d\n0000000000 65535 f \n" % (self.count + 1)]
        lines += [b"%010d 00000 n \n" % self.offsets[n] for n in range(1, self.count + 1)]
        ident = b"<" + identifier.hex().encode() + b">"
        trailer = b"trailer\n<</Size %d/Root %d 0 R%s/ID[%s%s]>>\nstartxref\n%d\n%%%%EOF\n" % (
            self.count + 1, root, b"/Info %d 0 R" % info_ref if info_ref else b"", ident, ident, xref)
        return b"".join(self.chunks) + b"".join(lines) + trailer


# -- stored PDFs read once per process -------------------------------------------------------------------

_CACHE_ENTRIES, _CACHE_BYTES, _RENDERED_ENTRIES = 64, 64 << 20, 16
_kept: OrderedDict[str, Part] = OrderedDict()  # what comes back: a tenant's CGV and annexes
_rendered: OrderedDict[str, Part] = OrderedDict()  # pages just rendered, until their Factur-X is built
_lock = threading.Lock()


def part_of(content: bytes, *, keep: bool = True) -> Part:
    """The pages of a PDF as a part: known if this process rendered them or has read them (and kept them:
    `keep`), read with pypdf otherwise."""
    digest = hashlib.sha256(content).hexdigest()
    with _lock:
        part = _kept.get(digest) or _rendered.get(digest)
        if part is not None:
            if digest in _kept:
                _kept.move_to_end(digest)
            return part
    part = _imported(content)
    if keep:
        with _lock:
            _kept[digest] = part
            while len(_kept) > _CACHE_ENTRIES or (len(_kept) > 1 and sum(p.size for p in _kept.values()) > _CACHE_BYTES):
                _kept.popitem(last=False)
    return part


def remember(content: bytes, part: Part) -> None:
    """`part` is what `content` holds (our renderer gives both: its bytes are then never parsed)."""
    with _lock:
        _rendered[hashlib.sha256(content).hexdigest()] = part
        while len(_rendered) > _RENDERED_ENTRIES:
            _rendered.popitem(last=False)


def forget(content: bytes) -> None:
    """Drop what is known of `content` (its next use reads it)."""
    digest = hashlib.sha256(content).hexdigest()
    with _lock:
        _kept.pop(digest, None)
        _rendered.pop(digest, None)


_PAGE_DROPPED = frozenset({"/Parent", "/B", "/StructParents", "/PieceInfo"})


def _imported(content: bytes) -> Part:
    from pypdf import PdfReader
    from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject, NumberObject, StreamObject

    reader = PdfReader(io.BytesIO(content), strict=False)
    builder = PartBuilder()
    local: dict[tuple[int, int], int] = {}
    pending: list[tuple[int, object]] = []
    page_ids = {}
    for page in reader.pages:  # pypdf has copied the inherited attributes (Resources, MediaBox…) into each page
        ref = page.indirect_reference
        page_ids[(ref.idnum, ref.generation)] = page
    pages = []

    def refer(ref: IndirectObject) -> bytes | int:
        key = (ref.idnum, ref.generation)
        if key not in local:
            target = page_ids.get(key) or ref.get_object()
            if isinstance(target, DictionaryObject) and target.get("/Type") in ("/Page", "/Pages") \
                    and key not in page_ids:
                return b"null"  # a link to a page left behind: never pull in the rest of its document
            local[key] = builder.reserve()
            pending.append((local[key], target))
        return local[key]

    def value(obj, out: list) -> None:
        if isinstance(obj, NameObject):
            out.append(name(obj[1:]) + b" ")
        elif isinstance(obj, NumberObject):
            out.append(b"%d " % obj)
        elif isinstance(obj, IndirectObject):
            out.append(refer(obj))
        elif isinstance(obj, DictionaryObject):
            out.append(b"<<")
            for key, item in obj.items():
                out.append(name(key[1:]) + b" ")
                value(item, out)
            out.append(b">>")
        elif isinstance(obj, ArrayObject):
            out.append(b"[")
            for item in obj:
                value(item, out)
                out.append(b" ")
            out.append(b"]")
        else:
            buffer = io.BytesIO()
            obj.write_to_stream(buffer)
            out.append(buffer.getvalue() + b" ")

    for key, page in page_ids.items():
        pages.append(refer(page.indirect_reference))
    while pending:
        index, obj = pending.pop()
        out: list = []
        if isinstance(obj, StreamObject):
            head: list = []
            for key, item in obj.items():
                if key != "/Length":
                    head.append(name(key[1:]) + b" ")
                    value(item, head)
            out = list(stream(tuple(head), obj._data))
        elif isinstance(obj, DictionaryObject) and obj.get("/Type") == "/Page":
            out.append(b"<</Parent ")
            out.append(PAGES)
            for key, item in obj.items():
                if key not in _PAGE_DROPPED:
                    out.append(name(key[1:]) + b" ")
                    value(item, out)
            out.append(b">>")
        else:
            value(obj, out)
        builder.set(index, *out)
    return builder.part(pages)
