"""OFD XML (GB/T 33190): a hardened parser and the few element helpers the signature
code needs.

The parser resolves no entities, loads no DTD and opens no network connection; a
document that declares a DTD at all is refused, which also refuses entity definitions
(billion laughs, external entities). Every OFD file lives in one namespace, checked on
the root element.
"""

from __future__ import annotations

from lxml import etree

from trust.errors import DocumentXmlInvalid

NS = "http://www.ofdspec.org/2016"
NSMAP = {"ofd": NS}
DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>\n'


def hardened_parser(*, remove_comments: bool = False) -> etree.XMLParser:
    """An lxml parser for untrusted documents: no entities, DTDs, network or huge trees."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=remove_comments,
    )


_PARSER = hardened_parser()


def q(tag: str) -> str:
    """The qualified name of an OFD element: ``q("Signature")`` -> ``{ns}Signature``."""
    return f"{{{NS}}}{tag}"


def parse(data: bytes, name: str, root: str) -> etree._Element:
    """The root element of the OFD file ``name``, which must be ``ofd:<root>``."""
    try:
        tree = etree.fromstring(data, _PARSER).getroottree()
    except etree.XMLSyntaxError as exc:
        raise DocumentXmlInvalid(f"/{name} is not well-formed XML: {exc.msg}") from None
    except ValueError as exc:  # e.g. an encoding declaration lxml refuses
        raise DocumentXmlInvalid(f"/{name} cannot be parsed: {exc}") from None
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise DocumentXmlInvalid(f"/{name} declares a DTD, which OFD files never need")
    element = tree.getroot()
    if element.tag != q(root):
        raise DocumentXmlInvalid(f"/{name}: root element is {element.tag}, expected {{{NS}}}{root}")
    return element


def child(element: etree._Element, tag: str) -> etree._Element | None:
    return element.find(q(tag))


def children(element: etree._Element, tag: str) -> list[etree._Element]:
    return list(element.iterfind(q(tag)))


def text(element: etree._Element | None) -> str:
    return (element.text or "").strip() if element is not None else ""


def element(
    tag: str, attrib: dict[str, str] | None = None, value: str | None = None
) -> etree._Element:
    made = etree.Element(q(tag), attrib or {}, nsmap=NSMAP)
    if value is not None:
        made.text = value
    return made


def sub(
    parent: etree._Element, tag: str, attrib: dict[str, str] | None = None, value: str | None = None
) -> etree._Element:
    made = etree.SubElement(parent, q(tag), attrib or {})
    if value is not None:
        made.text = value
    return made


def serialise(root: etree._Element) -> bytes:
    """UTF-8 with the declaration the samples carry."""
    return DECLARATION + etree.tostring(root, encoding="UTF-8", xml_declaration=False)
