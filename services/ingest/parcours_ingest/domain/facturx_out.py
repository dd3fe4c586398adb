"""The outgoing Factur-X PDF, built in one pypdf pass: the invoice PDF, the tenant's CGV pages inserted
at their position and the annexes appended, an sRGB output intent (PDF/A), and only then the CII XML
embedded as a PDF/A-3 associated file with its XMP metadata (Factur-X extension schema): changing the
pages after embedding would break it. Our own small code rather than the factur-x library's internals:
it parsed and wrote the whole PDF a second time and built the XMP with lxml.objectify."""

from __future__ import annotations

import hashlib
import io
import mimetypes
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from xml.sax.saxutils import escape

from pypdf import PdfReader, PdfWriter
from pypdf.generic import (
    ArrayObject, ByteStringObject, DecodedStreamObject, DictionaryObject, NameObject, NumberObject, TextStringObject,
)

from parcours_ingest.domain.documents.pdf import INVOICE_XML_NAMES

FACTURX_FILENAME = "factur-x.xml"
FACTURX_URN = "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#"
PRODUCER = "Parcours (pypdf)"
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
    return _written(_composed(parts))


def facturx_document(parts: Composition, embedding: Embedding) -> bytes:
    """The composed PDF with the CII embedded as factur-x.xml and PDF/A-3 metadata, written once."""
    return _written(_embed(_composed(parts), embedding))


def _composed(parts: Composition) -> PdfWriter:
    writer = PdfWriter()
    writer.append(PdfReader(io.BytesIO(parts.invoice_pdf)))
    if parts.cgv is not None:
        pages = len(writer.pages)
        position = pages if parts.cgv.after_page is None else min(max(parts.cgv.after_page, 0), pages)
        cgv = PdfReader(io.BytesIO(parts.cgv.pdf))
        for offset, page in enumerate(cgv.pages):
            writer.insert_page(page, position + offset)
    for annex in parts.annexes:
        writer.append(PdfReader(io.BytesIO(annex)))
    _add_output_intent(writer)
    return writer


def _written(writer: PdfWriter) -> bytes:
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _embed(writer: PdfWriter, embedding: Embedding) -> PdfWriter:
    at = (embedding.at or datetime.now(timezone.utc)).astimezone(timezone.utc).replace(microsecond=0)
    pdf_date = at.strftime("D:%Y%m%d%H%M%S+00'00'")
    writer.pdf_header = "%PDF-1.7"  # PDF/A-3 is based on PDF 1.7
    files = [(FACTURX_FILENAME, embedding.xml, "text/xml", "Data", "Factur-X XML file", pdf_date)]
    files += [(a.filename, a.content, mimetypes.guess_type(a.filename)[0] or "application/octet-stream",
               "Supplement", a.description, None)
              for a in embedding.attachments if a.filename.lower() not in INVOICE_XML_NAMES]
    specs = sorted(((name, _file_spec(writer, name, *rest)) for name, *rest in files), key=lambda item: item[0])
    names = ArrayObject()
    for name, spec in specs:
        names += [TextStringObject(name), spec]
    root = writer._root_object
    root[NameObject("/AF")] = writer._add_object(ArrayObject(spec for _, spec in specs))
    root[NameObject("/Names")] = DictionaryObject({NameObject("/EmbeddedFiles"): DictionaryObject(
        {NameObject("/Names"): names})})
    root[NameObject("/PageMode")] = NameObject("/UseAttachments")
    root[NameObject("/Lang")] = TextStringObject(embedding.language)
    metadata = DecodedStreamObject()
    metadata.set_data(xmp(embedding, at))  # uncompressed, as PDF/A recommends for XMP
    metadata.update({NameObject("/Type"): NameObject("/Metadata"), NameObject("/Subtype"): NameObject("/XML")})
    root[NameObject("/Metadata")] = writer._add_object(metadata)
    writer.add_metadata({"/Title": embedding.title, "/Author": embedding.author, "/Subject": embedding.title,
                         "/Keywords": "Factur-X", "/Creator": PRODUCER, "/Producer": PRODUCER,
                         "/CreationDate": pdf_date, "/ModDate": pdf_date})
    identifier = ByteStringObject(hashlib.sha256(embedding.xml + pdf_date.encode()).digest()[:16])
    writer._ID = ArrayObject([identifier, identifier])
    return writer


def _file_spec(writer: PdfWriter, name: str, content: bytes, media_type: str, relationship: str, description: str,
               modified: str | None):
    params = DictionaryObject({NameObject("/Size"): NumberObject(len(content)),
                               NameObject("/CheckSum"): ByteStringObject(hashlib.md5(content).digest())})
    if modified:
        params[NameObject("/ModDate")] = TextStringObject(modified)
    stream = DecodedStreamObject()
    stream.set_data(content)
    stream = stream.flate_encode()
    stream.update({NameObject("/Type"): NameObject("/EmbeddedFile"), NameObject("/Subtype"): NameObject(f"/{media_type}"),
                   NameObject("/Params"): params})
    file_ref = writer._add_object(stream)
    return writer._add_object(DictionaryObject({
        NameObject("/Type"): NameObject("/Filespec"), NameObject("/F"): TextStringObject(name),
        NameObject("/UF"): TextStringObject(name), NameObject("/Desc"): TextStringObject(description),
        NameObject("/AFRelationship"): NameObject(f"/{relationship}"),
        NameObject("/EF"): DictionaryObject({NameObject("/F"): file_ref, NameObject("/UF"): file_ref}),
    }))


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
def _srgb_profile() -> bytes:
    """An sRGB ICC profile, made by Little CMS inside Pillow (nothing read from the network)."""
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _add_output_intent(writer: PdfWriter) -> None:
    profile = DecodedStreamObject()
    profile.set_data(_srgb_profile())
    profile[NameObject("/N")] = NumberObject(3)
    intent = DictionaryObject({
        NameObject("/Type"): NameObject("/OutputIntent"),
        NameObject("/S"): NameObject("/GTS_PDFA1"),
        NameObject("/OutputConditionIdentifier"): TextStringObject("sRGB IEC61966-2.1"),
        NameObject("/Info"): TextStringObject("sRGB IEC61966-2.1"),
        NameObject("/DestOutputProfile"): writer._add_object(profile),
    })
    writer._root_object[NameObject("/OutputIntents")] = ArrayObject([writer._add_object(intent)])
