"""Adding a signature to an OFD package (GB/T 33190 §18, standards.md §8).

``stamp_ofd`` adds a Seal-type signature: ``Sign_N/Signature.xml`` lists the SM3 of
every protected file (References), the stamp's place (StampAnnot, one per page for a
riding seal) and the signing time; ``SignedValue.dat`` is an SES_Signature over
SM3(Signature.xml) made by a callable (``seals.build`` with a test key in tests, the seal
service in production), so this module never sees a key. ``sign_ofd`` adds a Sign-type
signature whose SignedValue.dat is a GM/T 0010 SignedData over SM3(Signature.xml).

Modes: ``continue`` leaves Signatures.xml out of the References, so more signatures can
follow; ``whole`` covers it too, and any later signature is refused (it would have to
change a protected file). The written layout follows the third-party samples: files as
``v4signed.ofd`` has them, SignedInfo children in schema order, absolute FileRefs.
"""

from __future__ import annotations

import base64
import hmac
import posixpath
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from asn1crypto import x509
from lxml import etree

from seals.documents import ofd_xml as x
from seals.documents.ofd_package import OfdPackage, PackageLimits, read_package
from seals.documents.ofd_structure import (
    OFD_XML,
    DocumentLayout,
    Page,
    SignatureList,
    layout,
    pages,
    signature_file,
    signature_list,
)
from seals.parse import parse_signature
from trust import oids
from trust.clock import Clock, SystemClock
from trust.cms import GMT0010, CmsSigner, build_signed_data
from trust.cms.algorithms import digest, signer_digest
from trust.cms.build import add_unsigned_attributes, timestamp_token_attribute
from trust.cms.verify import load_content_info
from trust.errors import (
    DocumentMalformed,
    DocumentPageNotFound,
    DocumentProtected,
    MalformedASN1,
    UnsupportedSealVersion,
    ValidationFailed,
)
from trust.sm3 import sm3

# (SM3 of Signature.xml, its package path "/Doc_0/Signs/Sign_N/Signature.xml") -> DER
# SES_Signature with that dataHash and propertyInfo.
SealSignatureFn = Callable[[bytes, str], bytes]
# (hash algorithm name, digest of a SignerInfo's signature value) -> DER timestamp token,
# as the TSA issues them (``TimestampAuthority.issue(...).token``).
TimestampFn = Callable[[str, bytes], bytes]

SIGNATURE_METHOD = oids.SM3_WITH_SM2
DATE_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"  # ofdrw's form; UTC here


class StampMode(StrEnum):
    CONTINUE = "continue"  # Signatures.xml left open: more signatures may follow
    WHOLE = "whole"  # everything protected: no further signature


@dataclass(frozen=True)
class Rect:
    """A rectangle on the page in millimetres, origin top left (OFD's coordinates)."""

    x: float
    y: float
    width: float
    height: float

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0 or self.x < 0 or self.y < 0:
            raise ValidationFailed("the stamp rectangle needs x, y >= 0 and a positive size")

    def box(self) -> str:
        return " ".join(f"{v:g}" for v in (self.x, self.y, self.width, self.height))


@dataclass(frozen=True)
class Provider:
    name: str = "trust-service"
    company: str = "Trust Service"
    version: str = "0.1.0"


@dataclass(frozen=True)
class Placement:
    """Where the stamp appears: ``rect`` on page ``page`` (1-based), or, for a riding
    seal, a slice of it at the right edge of each page from ``page`` to ``last_page``."""

    page: int
    rect: Rect
    last_page: int | None = None


def stamp_ofd(
    package: bytes | OfdPackage,
    *,
    seal_signature: SealSignatureFn,
    placement: Placement,
    mode: StampMode = StampMode.CONTINUE,
    provider: Provider = Provider(),
    limits: PackageLimits = PackageLimits(),
    clock: Clock | None = None,
) -> bytes:
    """``package`` with one more Seal-type signature, as package bytes."""

    def signed_value(original: bytes, location: str) -> bytes:
        digest = sm3(original)
        der = seal_signature(digest, location)
        try:
            made = parse_signature(der)
        except (MalformedASN1, UnsupportedSealVersion):
            raise ValidationFailed(
                "the seal signature callable returned no SES_Signature"
            ) from None
        if not hmac.compare_digest(made.data_hash, digest):
            raise ValidationFailed("the SES_Signature's dataHash is not SM3(Signature.xml)")
        return der

    return _add_signature(
        _open(package, limits), "Seal", placement, mode, provider, signed_value, clock
    )


def sign_ofd(
    package: bytes | OfdPackage,
    *,
    signer: CmsSigner,
    chain: Sequence[x509.Certificate] = (),
    mode: StampMode = StampMode.CONTINUE,
    timestamp: TimestampFn | None = None,
    provider: Provider = Provider(),
    limits: PackageLimits = PackageLimits(),
    clock: Clock | None = None,
) -> bytes:
    """``package`` with one more Sign-type signature (no seal, no StampAnnot): an attached
    GM/T 0010 SignedData whose content is SM3(Signature.xml), with the signer's ``chain``
    (its CA certificates) beside its certificate, optionally timestamped."""
    clock = clock or SystemClock()

    def signed_value(original: bytes, _: str) -> bytes:
        der = build_signed_data(
            sm3(original),
            signer,
            profile=GMT0010,
            signing_time=clock.now(),
            extra_certificates=chain,
        )
        if timestamp is None:
            return der
        value = load_content_info(der)["content"]["signer_infos"][0]["signature"].native
        name = signer_digest(signer.algorithm)
        token = timestamp(name, digest(name, value))
        return add_unsigned_attributes(der, [timestamp_token_attribute(token)])

    return _add_signature(_open(package, limits), "Sign", None, mode, provider, signed_value, clock)


def _open(package: bytes | OfdPackage, limits: PackageLimits) -> OfdPackage:
    return read_package(package, limits) if isinstance(package, bytes) else package


def _add_signature(
    package: OfdPackage,
    kind: str,
    placement: Placement | None,
    mode: StampMode,
    provider: Provider,
    make_signed_value: Callable[[bytes, str], bytes],
    clock: Clock | None,
) -> bytes:
    clock = clock or SystemClock()
    structure = layout(package)
    doc_dir = posixpath.dirname(structure.doc_root)
    changed: dict[str, bytes] = {}
    if structure.signatures is None:
        list_path = posixpath.join(doc_dir, "Signs", "Signatures.xml")
        changed[OFD_XML] = _with_signatures_entry(structure, list_path)
        existing = SignatureList(list_path, "", ())
        list_root = x.element("Signatures")
        x.sub(list_root, "MaxSignId", value="0")
    else:
        list_path = structure.signatures
        existing = signature_list(package, list_path)
        _refuse_if_protected(package, existing)
        list_root = x.parse(package.read(list_path), list_path, "Signatures")

    next_id = existing.next_id()
    sign_id = str(next_id)
    annots = _annotations(package, structure, placement, next_id + 1)
    sign_dir = _free_sign_dir(package, posixpath.join(doc_dir, "Signs"))
    signature_path = f"{sign_dir}/Signature.xml"
    value_path = f"{sign_dir}/SignedValue.dat"
    last_id = next_id + len(annots)

    x.sub(list_root, "Signature", {"ID": sign_id, "Type": kind, "BaseLoc": "/" + signature_path})
    max_id = x.child(list_root, "MaxSignId")
    if max_id is None:
        max_id = x.element("MaxSignId")
        list_root.insert(0, max_id)
    max_id.text = str(last_id)
    changed[list_path] = x.serialise(list_root)

    updated = package.with_files(changed)
    protected = [
        name
        for name in updated.names
        if not name.startswith(sign_dir + "/") and (mode is StampMode.WHOLE or name != list_path)
    ]
    signature_xml = x.serialise(
        _signature_xml(updated, protected, annots, value_path, provider, clock)
    )
    signed_value = make_signed_value(signature_xml, "/" + signature_path)
    return updated.with_files({signature_path: signature_xml, value_path: signed_value}).to_bytes()


def _refuse_if_protected(package: OfdPackage, existing: SignatureList) -> None:
    for entry in existing.entries:
        described = signature_file(package, entry.location)
        if any(r.name == existing.location for r in described.references):
            raise DocumentProtected(
                f"signature {entry.id} protects the whole document: no further signature "
                "can be added without breaking it"
            )


def _with_signatures_entry(structure: DocumentLayout, list_path: str) -> bytes:
    body = x.child(structure.root, "DocBody")
    if body is None:  # layout() has checked there is one
        raise DocumentMalformed("/OFD.xml has no DocBody")
    x.sub(body, "Signatures", value="/" + list_path)
    return x.serialise(structure.root)


def _free_sign_dir(package: OfdPackage, signs_dir: str) -> str:
    taken = {n for n in package.names if n.startswith(signs_dir + "/")}
    index = 0
    while any(n.startswith(f"{signs_dir}/Sign_{index}/") for n in taken):
        index += 1
    return f"{signs_dir}/Sign_{index}"


def _annotations(
    package: OfdPackage, structure: DocumentLayout, placement: Placement | None, first_id: int
) -> list[dict[str, str]]:
    """StampAnnot attributes, IDs from ``first_id`` on (IDs share MaxSignId, as ofdrw's)."""
    if placement is None:
        return []
    found = pages(package, structure.doc_root)
    last = placement.last_page or placement.page
    if not 1 <= placement.page <= last <= len(found):
        raise DocumentPageNotFound(
            f"pages {placement.page}..{last} asked, the document has {len(found)}"
        )
    chosen: Sequence[Page] = found[placement.page - 1 : last]
    rect = placement.rect
    if placement.last_page is None:
        return [{"ID": str(first_id), "PageRef": chosen[0].id, "Boundary": rect.box()}]
    # Riding seal: the image's i-th vertical slice shows at the right edge of page i.
    width = _page_width(package, structure.doc_root)
    part = rect.width / len(chosen)
    annots = []
    for i, page in enumerate(chosen):
        box = Rect(max(width - part * (i + 1), 0), rect.y, rect.width, rect.height)
        clip = Rect(part * i, 0, part, rect.height)
        annots.append(
            {"ID": str(first_id + i), "PageRef": page.id, "Boundary": box.box(), "Clip": clip.box()}
        )
    return annots


def _page_width(package: OfdPackage, doc_root: str) -> float:
    document = x.parse(package.read(doc_root), doc_root, "Document")
    box = document.find(f"{x.q('CommonData')}/{x.q('PageArea')}/{x.q('PhysicalBox')}")
    try:
        return float(x.text(box).split()[2])
    except (IndexError, ValueError):
        raise DocumentMalformed(f"/{doc_root}: no usable PhysicalBox") from None


def _signature_xml(
    package: OfdPackage,
    protected: list[str],
    annots: list[dict[str, str]],
    value_path: str,
    provider: Provider,
    clock: Clock,
) -> etree._Element:
    root = x.element("Signature")
    info = x.sub(root, "SignedInfo")
    x.sub(
        info,
        "Provider",
        {"ProviderName": provider.name, "Company": provider.company, "Version": provider.version},
    )
    x.sub(info, "SignatureMethod", value=SIGNATURE_METHOD)
    x.sub(info, "SignatureDateTime", value=clock.now().strftime(DATE_TIME_FORMAT))
    references = x.sub(info, "References", {"CheckMethod": "SM3"})
    for name in protected:
        ref = x.sub(references, "Reference", {"FileRef": "/" + name})
        x.sub(ref, "CheckValue", value=base64.b64encode(sm3(package.read(name))).decode())
    for attributes in annots:
        x.sub(info, "StampAnnot", attributes)
    x.sub(root, "SignedValue", value="/" + value_path)
    return root
