"""GM/T 0031-2014 (v1) seal and signature, with the tolerances ofdrw applies to
"non-standard" seals: either time type in the property, OCTET STRING in place of BIT
STRING for timeInfo and dataHash, and extension data that may not parse at all."""

from __future__ import annotations

from asn1crypto import core

from seals.asn1.common import CertInfoList, SESESPictrueInfo, SESHeader, SignAlgorithm


class Time(core.Choice):
    """v1 specifies UTCTime; some vendors write GeneralizedTime."""

    _alternatives = [
        ("utc_time", core.UTCTime),
        ("generalized_time", core.GeneralizedTime),
    ]


class BitsOrOctets(core.Choice):
    _alternatives = [
        ("bit_string", core.OctetBitString),
        ("octet_string", core.OctetString),
    ]


class SESESPropertyInfo(core.Sequence):
    _fields = [
        ("type", core.Integer),
        ("name", core.UTF8String),
        ("cert_list", CertInfoList),  # no certListType in v1: certificates only
        ("create_date", Time),
        ("valid_start", Time),
        ("valid_end", Time),
    ]


class SESSealInfo(core.Sequence):
    _fields = [
        ("header", SESHeader),
        ("es_id", core.IA5String),
        ("property", SESESPropertyInfo),
        ("picture", SESESPictrueInfo),
        # Kept opaque: vendors' v1 extensions often fail to parse, and are then ignored.
        ("ext_datas", core.Any, {"optional": True}),
    ]


class SESSignInfo(core.Sequence):
    _fields = [
        ("cert", core.OctetString),  # the seal maker's certificate
        ("signature_algorithm", SignAlgorithm),
        ("sign_data", core.OctetBitString),
    ]


class SESeal(core.Sequence):
    _fields = [
        ("e_seal_info", SESSealInfo),
        ("sign_info", SESSignInfo),
    ]


class TBSSign(core.Sequence):
    _fields = [
        ("version", core.Integer),
        ("eseal", SESeal),
        ("time_info", BitsOrOctets),  # a time string or a timestamp token
        ("data_hash", BitsOrOctets),
        ("property_info", core.IA5String),
        ("cert", core.OctetString),  # the signer's certificate, inside the signed part in v1
        ("signature_algorithm", SignAlgorithm),
    ]


class SESSignature(core.Sequence):
    _fields = [
        ("to_sign", TBSSign),
        ("signature", core.OctetBitString),
    ]
