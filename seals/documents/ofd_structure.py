"""Where things are in an OFD package (GB/T 33190 §7, §18): the document root, its
pages, the signature list and each signature's description, read from the XML.

A package may hold several documents (one ``DocBody`` each, with its own DocRoot and
signature list): verification reads them all; signing adds to the first, where every
producer we know puts the document.
"""

from __future__ import annotations

import base64
import binascii
import posixpath
import re
from dataclasses import dataclass

from lxml import etree

from seals.documents import ofd_xml as x
from seals.documents.ofd_package import OfdPackage, resolve
from trust.errors import DocumentMalformed

OFD_XML = "OFD.xml"
_DIGITS = re.compile(r"(\d+)$")


@dataclass(frozen=True)
class Page:
    id: str  # the page object ID, what StampAnnot.PageRef names
    content: str  # package name of its Content.xml


@dataclass(frozen=True)
class SignatureEntry:
    id: str
    type: str  # "Seal" (the default) or "Sign"
    location: str  # package name of its Signature.xml


@dataclass(frozen=True)
class SignatureList:
    location: str  # package name of Signatures.xml
    max_sign_id: str
    entries: tuple[SignatureEntry, ...]

    def next_id(self) -> int:
        """One more than every number used so far (MaxSignId may be "s001" or "002")."""
        used = [self.max_sign_id, *(e.id for e in self.entries)]
        numbers = [int(m.group(1)) for u in used if (m := _DIGITS.search(u))]
        return max(numbers, default=0) + 1


@dataclass(frozen=True)
class Reference:
    file_ref: str  # as written
    name: str  # package name it resolves to
    check_value: bytes


@dataclass(frozen=True)
class StampAnnot:
    id: str
    page_ref: str
    boundary: str


@dataclass(frozen=True)
class SignatureFile:
    location: str
    check_method: str
    signature_method: str
    date_time: str
    provider: str
    references: tuple[Reference, ...]
    stamp_annots: tuple[StampAnnot, ...]
    signed_value: str  # package name of SignedValue.dat


@dataclass(frozen=True)
class DocBody:
    doc_root: str  # package name of Document.xml
    signatures: str | None  # package name of Signatures.xml, when there is one


@dataclass(frozen=True)
class DocumentLayout:
    root: etree._Element  # OFD.xml
    bodies: tuple[DocBody, ...]  # at least one, in OFD.xml order

    @property
    def doc_root(self) -> str:
        """The first document's Document.xml: the one signing adds to."""
        return self.bodies[0].doc_root

    @property
    def signatures(self) -> str | None:
        return self.bodies[0].signatures


def layout(package: OfdPackage) -> DocumentLayout:
    if OFD_XML not in package:
        raise DocumentMalformed("the package has no OFD.xml: not an OFD document")
    root = x.parse(package.read(OFD_XML), OFD_XML, "OFD")
    bodies = []
    for n, body in enumerate(x.children(root, "DocBody"), start=1):
        doc_root = x.text(x.child(body, "DocRoot"))
        if not doc_root:
            raise DocumentMalformed(f"/OFD.xml: DocBody {n} has no DocRoot")
        signatures = x.text(x.child(body, "Signatures"))
        bodies.append(DocBody(resolve(doc_root), resolve(signatures) if signatures else None))
    if not bodies:
        raise DocumentMalformed("/OFD.xml has no DocBody")
    lists = [b.signatures for b in bodies if b.signatures is not None]
    if len({b.doc_root for b in bodies}) < len(bodies) or len(set(lists)) < len(lists):
        raise DocumentMalformed("/OFD.xml names one DocRoot or Signatures for two documents")
    return DocumentLayout(root=root, bodies=tuple(bodies))


def pages(package: OfdPackage, doc_root: str) -> tuple[Page, ...]:
    document = x.parse(package.read(doc_root), doc_root, "Document")
    container = x.child(document, "Pages")
    found = []
    base = posixpath.dirname(doc_root)
    for page in x.children(container, "Page") if container is not None else []:
        page_id, loc = page.get("ID"), page.get("BaseLoc")
        if not page_id or not loc:
            raise DocumentMalformed(f"/{doc_root}: a Page without ID or BaseLoc")
        found.append(Page(page_id, resolve(loc, base)))
    return tuple(found)


def signature_list(package: OfdPackage, location: str) -> SignatureList:
    root = x.parse(package.read(location), location, "Signatures")
    base = posixpath.dirname(location)
    entries = []
    for item in x.children(root, "Signature"):
        sign_id, loc = item.get("ID"), item.get("BaseLoc")
        if not sign_id or not loc:
            raise DocumentMalformed(f"/{location}: a Signature without ID or BaseLoc")
        entries.append(SignatureEntry(sign_id, item.get("Type", "Seal"), resolve(loc, base)))
    return SignatureList(location, x.text(x.child(root, "MaxSignId")), tuple(entries))


def signature_file(package: OfdPackage, location: str) -> SignatureFile:
    root = x.parse(package.read(location), location, "Signature")
    base = posixpath.dirname(location)
    info = x.child(root, "SignedInfo")
    if info is None:
        raise DocumentMalformed(f"/{location} has no SignedInfo")
    refs = x.child(info, "References")
    if refs is None:
        raise DocumentMalformed(f"/{location} has no References")
    references = []
    for ref in x.children(refs, "Reference"):
        file_ref = ref.get("FileRef", "")
        value = x.text(x.child(ref, "CheckValue"))
        try:
            digest = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            raise DocumentMalformed(
                f"/{location}: CheckValue of {file_ref} is not base64"
            ) from None
        references.append(Reference(file_ref, resolve(file_ref, base), digest))
    signed_value = x.text(x.child(root, "SignedValue"))
    if not signed_value:
        raise DocumentMalformed(f"/{location} has no SignedValue")
    provider = x.child(info, "Provider")
    annots = tuple(
        StampAnnot(a.get("ID", ""), a.get("PageRef", ""), a.get("Boundary", ""))
        for a in x.children(info, "StampAnnot")
    )
    return SignatureFile(
        location=location,
        check_method=refs.get("CheckMethod", ""),
        signature_method=x.text(x.child(info, "SignatureMethod")),
        date_time=x.text(x.child(info, "SignatureDateTime")),
        provider=provider.get("ProviderName", "") if provider is not None else "",
        references=tuple(references),
        stamp_annots=annots,
        signed_value=resolve(signed_value, base),
    )
