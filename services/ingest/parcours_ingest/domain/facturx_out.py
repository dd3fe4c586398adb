"""The outgoing Factur-X PDF, written in one pass by `pdf_objects`: the invoice's pages, the tenant's CGV
pages inserted at their position and the annexes appended, an sRGB output intent (PDF/A), and the CII
XML embedded as a PDF/A-3 associated file with its XMP metadata (Factur-X extension schema). The pages
of each input PDF are read once per process (a tenant's CGV and annexes, pages we rendered are never
parsed) and copied as they are. Our own small code rather than the factur-x library's internals or a
pypdf writer: they parsed and wrote every page again for each document."""

from __future__ import annotations

import hashlib
import mimetypes
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from xml.sax.saxutils import escape

from parcours_ingest.domain.documents.pdf import INVOICE_XML_NAMES
from parcours_ingest.domain.pdf_objects import PdfWriter, deflated, name, part_of, stream, text_string

FACTURX_FILENAME = "factur-x.xml"
FACTURX_URN = "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#"
PRODUCER = "Parcours"
XMP_LEVELS = {"minimum": "MINIMUM", "basicwl": "BASIC WL", "basic": "BASIC", "en16931": "EN 16931",
              "extended": "EXTENDED"}


@dataclass(frozen=True)
class Insert:
    """Pages to insert: `after_page` 0 puts them first, None after the last page of the invoice."""

    pdf: bytes
    after_page: int | None = None


@dataclass(frozen=True)
class Attachment:
    """A supporting file carried inside the Factur-X PDF (AFRelationship Supplement)."""

    filename: str
    content: bytes
    description: str = ""


@dataclass
class Composition:
    invoice_pdf: bytes
    cgv: Insert | None = None
    annexes: list[bytes] = field(default_factory=list)


@dataclass(frozen=True)
class Embedding:
    """What goes into the PDF beside its pages: the CII, the supporting files and the document's metadata."""

    xml: bytes
    language: str = "fr"
    attachments: list[Attachment] = field(default_factory=list)
    title: str = ""
    author: str = ""
    level: str = "en16931"
    at: datetime | None = None  # the document's creation time (now when absent)


def compose(parts: Composition) -> bytes:
    """One PDF: the invoice's pages with the CGV inserted, then the annexes, with an sRGB output intent."""
    writer, pages = _composed(parts)
    return writer.finish(pages=pages, catalog=(b"/OutputIntents[", _output_intent(writer), b"]"))


def facturx_document(parts: Composition, embedding: Embedding) -> bytes:
    """The composed PDF with the CII embedded as factur-x.xml and PDF/A-3 metadata, written once."""
    writer, pages = _composed(parts)
    at = (embedding.at or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(microsecond=0)
    pdf_date = at.strftime("D:%Y%m%d%H%M%S+00'00'")
    files = [(FACTURX_FILENAME, embedding.xml, "text/xml", "Data", "Factur-X XML file", pdf_date)]
    files += [(a.filename, a.content, mimetypes.guess_type(a.filename)[0] or "application/octet-stream",
               "Supplement", a.description, None)
              for a in embedding.attachments if a.filename.lower() not in INVOICE_XML_NAMES]
    specs = sorted(((file[0], _file_spec(writer, *file)) for file in files), key=lambda item: item[0])
    names = [s for filename, spec in specs for s in (text_string(filename), spec, b" ")]
    refs = [s for _, spec in specs for s in (spec, b" ")]
    metadata = writer.add(*stream((b"/Type/Metadata/Subtype/XML",), xmp(embedding, at)))  # uncompressed (PDF/A)
    catalog = (b"/AF[", *refs, b"]/Names<</EmbeddedFiles<</Names[", *names, b"]>>>>/PageMode/UseAttachments/Lang",
               text_string(embedding.language), b"/Metadata ", metadata, b"/OutputIntents[", _output_intent(writer),
               b"]")
    info = (b"/Title", text_string(embedding.title), b"/Author", text_string(embedding.author), b"/Subject",
            text_string(embedding.title), b"/Keywords(Factur-X)/Creator", text_string(PRODUCER), b"/Producer",
            text_string(PRODUCER), b"/CreationDate", text_string(pdf_date), b"/ModDate", text_string(pdf_date))
    identifier = hashlib.sha256(embedding.xml + pdf_date.encode()).digest()[:16]
    return writer.finish(pages=pages, catalog=catalog, info=info, identifier=identifier)


def _composed(parts: Composition) -> tuple[PdfWriter, list[int]]:
    writer = PdfWriter()
    pages = writer.place(part_of(parts.invoice_pdf, keep=False))  # one invoice's own pages: used once
    if parts.cgv is not None:
        position = len(pages) if parts.cgv.after_page is None else min(max(parts.cgv.after_page, 0), len(pages))
        pages[position:position] = writer.place(part_of(parts.cgv.pdf))
    for annex in parts.annexes:
        pages += writer.place(part_of(annex))
    return writer, pages


def _file_spec(writer: PdfWriter, filename: str, content: bytes, media_type: str, relationship: str,
               description: str, modified: str | None) -> int:
    params = b"/Params<</Size %d/CheckSum<%s>%s>>" % (
        len(content), hashlib.md5(content).hexdigest().encode(),
        b"/ModDate" + text_string(modified) if modified else b"")
    file_ref = writer.add(*deflated((b"/Type/EmbeddedFile/Subtype", name(media_type), params), content))
    return writer.add(b"<</Type/Filespec/F", text_string(filename), b"/UF", text_string(filename), b"/Desc",
                      text_string(description), b"/AFRelationship/", relationship.encode(), b"/EF<</F ", file_ref,
                      b"/UF ", file_ref, b">>>>")


_XMP = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="" xmlns:pdfaid="http://www.aiim.org/pdfa/ns/id/">
   <pdfaid:part>3</pdfaid:part>
   <pdfaid:conformance>B</pdfaid:conformance>
  </rdf:Description>
  <rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/">
   <dc:title><rdf:Alt><rdf:li xml:lang="x-default">{title}</rdf:li></rdf:Alt></dc:title>
   <dc:creator><rdf:Seq><rdf:li>{author}</rdf:li></rdf:Seq></dc:creator>
   <dc:description><rdf:Alt><rdf:li xml:lang="x-default">{title}</rdf:li></rdf:Alt></dc:description>
  </rdf:Description>
  <rdf:Description rdf:about="" xmlns:pdf="http://ns.adobe.com/pdf/1.3/">
   <pdf:Producer>{producer}</pdf:Producer>
   <pdf:Keywords>Factur-X</pdf:Keywords>
  </rdf:Description>
  <rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/">
   <xmp:CreatorTool>{producer}</xmp:CreatorTool>
   <xmp:CreateDate>{at}</xmp:CreateDate>
   <xmp:ModifyDate>{at}</xmp:ModifyDate>
  </rdf:Description>
  <rdf:Description rdf:about="" xmlns:pdfaExtension="http://www.aiim.org/pdfa/ns/extension/"
    xmlns:pdfaSchema="http://www.aiim.org/pdfa/ns/schema#" xmlns:pdfaProperty="http://www.aiim.org/pdfa/ns/property#">
   <pdfaExtension:schemas>
    <rdf:Bag>
     <rdf:li rdf:parseType="Resource">
      <pdfaSchema:schema>Factur-X PDFA Extension Schema</pdfaSchema:schema>
      <pdfaSchema:namespaceURI>{urn}</pdfaSchema:namespaceURI>
      <pdfaSchema:prefix>fx</pdfaSchema:prefix>
      <pdfaSchema:property>
       <rdf:Seq>{properties}
       </rdf:Seq>
      </pdfaSchema:property>
     </rdf:li>
    </rdf:Bag>
   </pdfaExtension:schemas>
  </rdf:Description>
  <rdf:Description rdf:about="" xmlns:fx="{urn}">
   <fx:DocumentType>INVOICE</fx:DocumentType>
   <fx:DocumentFileName>{filename}</fx:DocumentFileName>
   <fx:Version>1.0</fx:Version>
   <fx:ConformanceLevel>{level}</fx:ConformanceLevel>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>"""
_FX_PROPERTIES = {
    "DocumentFileName": "The name of the embedded XML document",
    "DocumentType": "The type of the hybrid document in capital letters, e.g. INVOICE or ORDER",
    "Version": "The actual version of the standard applying to the embedded XML document",
    "ConformanceLevel": "The conformance level of the embedded XML document",
}
_XMP_PROPERTIES = "".join(
    f"""
        <rdf:li rdf:parseType="Resource"><pdfaProperty:name>{name}</pdfaProperty:name>"""
    f"""<pdfaProperty:valueType>Text</pdfaProperty:valueType><pdfaProperty:category>external</pdfaProperty:category>"""
    f"""<pdfaProperty:description>{description}</pdfaProperty:description></rdf:li>"""
    for name, description in _FX_PROPERTIES.items())


def xmp(embedding: Embedding, at: datetime) -> bytes:
    """The XMP packet: PDF/A-3B identification, Dublin Core matching the Info dictionary, and the Factur-X
    extension schema with its fx: properties."""
    return _XMP.format(title=escape(embedding.title), author=escape(embedding.author), producer=PRODUCER,
                       at=at.strftime("%Y-%m-%dT%H:%M:%S+00:00"), urn=FACTURX_URN, properties=_XMP_PROPERTIES,
                       filename=FACTURX_FILENAME, level=XMP_LEVELS[embedding.level]).encode()


@lru_cache(maxsize=1)
def _srgb_profile() -> tuple:
    """An sRGB ICC profile, made by Little CMS inside Pillow (nothing read from the network), as a stream."""
    from PIL import ImageCms

    return deflated((b"/N 3",), ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())


def _output_intent(writer: PdfWriter) -> int:
    profile = writer.add(*_srgb_profile())
    return writer.add(b"<</Type/OutputIntent/S/GTS_PDFA1/OutputConditionIdentifier(sRGB IEC61966-2.1)"
                      b"/Info(sRGB IEC61966-2.1)/DestOutputProfile ", profile, b">>")
