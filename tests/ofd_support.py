"""Test support for OFD: the sample packages, ofdrw's test signer certificate, rewriting
a package, raw zips for hostile-archive tests, a generated unsigned OFD and a signed
package of two documents."""

from __future__ import annotations

import base64
import io
import subprocess
import zipfile
from datetime import datetime
from pathlib import Path

from asn1crypto import pem, x509

from api.deps import Services
from ca.service import CreateCaRequest
from seals.build import build_seal, build_signature, build_tbs_sign
from seals.documents import ofd_xml as x
from seals.documents.ofd_package import OfdPackage, read_package
from seals.documents.ofd_sign import Placement, Rect, SealSignatureFn, stamp_ofd
from seals.documents.ofd_structure import signature_file, signature_list
from seals.documents.ofd_xml import NS
from tests.seals_helpers import NOW, Identity, SealEnv, seal_info
from trust.audit import AuditLog
from trust.clock import FakeClock
from trust.keys import KeyAlgorithm
from trust.sm3 import sm3

VECTORS = Path(__file__).parent / "vectors"


def sample(name: str) -> bytes:
    """An OFD sample: ofdrw's seal samples live with the seal vectors, the rest here."""
    for folder in ("seals", "ofd"):
        path = VECTORS / folder / name
        if path.exists():
            return path.read_bytes()
    raise FileNotFoundError(name)


def ofdrw_user_certificate() -> x509.Certificate:
    """The signer certificate in ofdrw's USER.p12, read by the openssl CLI (RC2-40 needs
    -legacy; cryptography refuses the SM2 key in it)."""
    out = subprocess.run(
        ["openssl", "pkcs12", "-legacy", "-nokeys", "-passin", "pass:777777"],
        input=(VECTORS / "ofd" / "USER.p12").read_bytes(),
        capture_output=True,
        check=True,
    ).stdout
    start = out.index(b"-----BEGIN CERTIFICATE-----")
    _, _, der = pem.unarmor(out[start:])
    return x509.Certificate.load(der)


def rewrite(package: bytes, changed: dict[str, bytes]) -> bytes:
    """``package`` with files replaced or added."""
    return read_package(package).with_files(changed).to_bytes()


def change_one_byte(data: bytes) -> bytes:
    """``data`` with one byte changed; XML stays well-formed (a space becomes a tab)."""
    changed = bytearray(data)
    index = data.find(b" ") if data.lstrip().startswith(b"<") else len(data) - 1
    changed[index] = 0x09 if changed[index] == 0x20 else changed[index] ^ 0x01
    return bytes(changed)


def raw_zip(entries: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    """A zip with exactly these entry names, duplicates and hostile names included."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as archive:
        for name, data in entries:
            info = zipfile.ZipInfo(name)
            info.compress_type = method
            archive.writestr(info, data)
    return out.getvalue()


def make_ofd(pages: int = 1, filler: int = 0) -> bytes:
    """An unsigned OFD with ``pages`` pages of text and ``filler`` bytes of incompressible
    image resource, laid out as ofdrw writes documents."""
    ofd = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<ofd:OFD xmlns:ofd="{NS}" Version="1.0" '
        'DocType="OFD"><ofd:DocBody><ofd:DocInfo><ofd:DocID>0123456789abcdef</ofd:DocID>'
        "</ofd:DocInfo><ofd:DocRoot>Doc_0/Document.xml</ofd:DocRoot></ofd:DocBody></ofd:OFD>"
    )
    page_list = "".join(
        f'<ofd:Page ID="{i + 1}" BaseLoc="Pages/Page_{i}/Content.xml"/>' for i in range(pages)
    )
    document = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<ofd:Document xmlns:ofd="{NS}"><ofd:CommonData>'
        "<ofd:PublicRes>PublicRes.xml</ofd:PublicRes><ofd:PageArea><ofd:PhysicalBox>0 0 210 297"
        f"</ofd:PhysicalBox></ofd:PageArea><ofd:MaxUnitID>{pages + 10}</ofd:MaxUnitID>"
        f"</ofd:CommonData><ofd:Pages>{page_list}</ofd:Pages></ofd:Document>"
    )
    public_res = (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<ofd:Res xmlns:ofd="{NS}" BaseLoc="Res">'
        '<ofd:Fonts><ofd:Font ID="3" FontName="SimSun"/></ofd:Fonts></ofd:Res>'
    )
    files = {
        "OFD.xml": ofd.encode(),
        "Doc_0/Document.xml": document.encode(),
        "Doc_0/PublicRes.xml": public_res.encode(),
    }
    for i in range(pages):
        files[f"Doc_0/Pages/Page_{i}/Content.xml"] = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<ofd:Page xmlns:ofd="{NS}"><ofd:Content>'
            f'<ofd:Layer ID="{pages + 1 + i}"><ofd:TextObject ID="{2 * pages + 1 + i}" '
            'Boundary="30 25 60 5" Font="3" Size="3"><ofd:TextCode X="0" Y="3">'
            f"Page {i + 1}</ofd:TextCode></ofd:TextObject></ofd:Layer></ofd:Content></ofd:Page>"
        ).encode()
    if filler:
        # Deterministic and incompressible: SM3 in counter mode.
        blocks = [sm3(i.to_bytes(8, "big")) for i in range(filler // 32 + 1)]
        files["Doc_0/Res/image_0.png"] = b"".join(blocks)[:filler]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return out.getvalue()


def two_documents(seal_signature: SealSignatureFn) -> bytes:
    """A package of two documents (two DocBody, Doc_0 and Doc_1), each sealed once.

    Our stamping signs the first document and covers OFD.xml, which naming the second
    document changes; so Doc_0 is stamped alone, Doc_1 is its copy with its own
    signature list, and both Signature.xml files get their CheckValues recomputed and a
    new SES_Signature, as a producer signing each document in turn would write them."""
    stamped = read_package(
        stamp_ofd(
            make_ofd(2), seal_signature=seal_signature, placement=Placement(1, Rect(20, 30, 40, 40))
        )
    )
    files = {name: stamped.read(name) for name in stamped}
    for name in list(files):
        if name.startswith("Doc_0/"):
            files["Doc_1/" + name[len("Doc_0/") :]] = files[name].replace(b"/Doc_0/", b"/Doc_1/")
    ofd = files["OFD.xml"]
    body = ofd[ofd.index(b"<ofd:DocBody>") : ofd.index(b"</ofd:DocBody>") + len(b"</ofd:DocBody>")]
    second = body.replace(b"Doc_0/", b"Doc_1/").replace(b"0123456789abcdef", b"fedcba9876543210")
    files["OFD.xml"] = ofd.replace(body, body + second)
    package = read_package(raw_zip(list(files.items())))
    for doc in ("Doc_0", "Doc_1"):
        listed = signature_list(package, f"{doc}/Signs/Signatures.xml")
        for entry in listed.entries:
            package = _resealed(package, entry.location, seal_signature)
    return package.to_bytes()


def _resealed(package: OfdPackage, location: str, seal_signature: SealSignatureFn) -> OfdPackage:
    """The signature at ``location`` with every CheckValue recomputed and sealed again."""
    root = x.parse(package.read(location), location, "Signature")
    for ref in root.iter(x.q("Reference")):
        name = ref.get("FileRef", "").lstrip("/")
        value = x.child(ref, "CheckValue")
        assert value is not None
        value.text = base64.b64encode(sm3(package.read(name))).decode()
    xml = x.serialise(root)
    value_path = signature_file(package, location).signed_value
    signed = seal_signature(sm3(xml), "/" + location)
    return package.with_files({location: xml, value_path: signed})


def seal_signer(maker: Identity, signer: Identity, when: datetime = NOW) -> SealSignatureFn:
    """What production gets from the seal service: SM3(Signature.xml) and its path in,
    a v4 SES_Signature by ``signer`` under a seal made by ``maker`` out."""
    seal = build_seal(seal_info([signer.cert]), maker.cert, maker.key.sign)

    def sign(data_hash: bytes, property_info: str) -> bytes:
        tbs = build_tbs_sign(
            seal=seal, time_info=when, data_hash=data_hash, property_info=property_info
        )
        return build_signature(tbs, signer.cert, signer.key.sign)

    return sign


def service_seal_env(services: Services, clock: FakeClock) -> SealEnv:
    """The seal test environment over an app's (or the CLI's) own services, with the
    default SM2 CA hierarchy (made here unless ``trustctl init`` made it)."""
    settings, audit = services.settings, services.audit
    assert isinstance(audit, AuditLog)
    ca = services.ca()
    by_name = {info.name: info for info in ca.list_cas()}
    root = by_name.get(settings.ca_default_sm2_root_name) or ca.create_ca(
        CreateCaRequest(settings.ca_default_sm2_root_name, KeyAlgorithm.SM2)
    )
    issuing = by_name.get(settings.ca_default_sm2_issuing_name) or ca.create_ca(
        CreateCaRequest(settings.ca_default_sm2_issuing_name, KeyAlgorithm.SM2, parent_id=root.id)
    )
    return SealEnv(
        services.database,
        clock,
        services.keystore(),
        ca,
        issuing.id,
        ca.chain(root.id)[0],
        ca.chain(issuing.id)[0],
        services.signers(),
        services.seals(),
        audit,
        settings,
    )
