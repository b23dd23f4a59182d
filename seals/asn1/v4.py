"""GB/T 38540-2020 (v4) seal and signature. The builder encodes with these classes using
only the standard's fields; the ``*_untagged`` / ``*_tagged`` alternatives exist for reading
producers that tag differently (C38540 leaves the timestamp untagged)."""

from __future__ import annotations

from asn1crypto import core

from seals.asn1.common import (
    ExtensionDatas,
    SESESPictrueInfo,
    SESHeader,
    SignAlgorithm,
)


class SESESPropertyInfo(core.Sequence):
    _fields = [
        ("type", core.Integer),
        ("name", core.UTF8String),
        ("cert_list_type", core.Integer),  # 1 certificates, 2 certificate digests
        # SES_CertList is an untagged CHOICE of two SEQUENCE OFs, so only certListType
        # tells them apart: it is read as CertInfoList or CertDigestList afterwards.
        ("cert_list", core.Any),
        ("create_date", core.GeneralizedTime),
        ("valid_start", core.GeneralizedTime),
        ("valid_end", core.GeneralizedTime),
    ]


class SESSealInfo(core.Sequence):
    _fields = [
        ("header", SESHeader),
        ("es_id", core.IA5String),
        ("property", SESESPropertyInfo),
        ("picture", SESESPictrueInfo),
        ("ext_datas", ExtensionDatas, {"optional": True}),
        ("ext_datas_tagged", ExtensionDatas, {"explicit": 0, "optional": True}),
    ]


class SESeal(core.Sequence):
    _fields = [
        ("e_seal_info", SESSealInfo),
        ("cert", core.OctetString),  # the seal maker's certificate
        ("sign_alg_id", SignAlgorithm),
        ("signed_value", core.OctetBitString),
    ]


class TBSSign(core.Sequence):
    _fields = [
        ("version", core.Integer),
        ("eseal", SESeal),
        ("time_info", core.GeneralizedTime),
        ("data_hash", core.OctetBitString),
        ("property_info", core.IA5String),
        ("ext_datas", ExtensionDatas, {"explicit": 0, "optional": True}),
        ("ext_datas_untagged", ExtensionDatas, {"optional": True}),
    ]


class SESSignature(core.Sequence):
    _fields = [
        ("to_sign", TBSSign),
        ("cert", core.OctetString),  # the signer's certificate
        ("signature_alg_id", SignAlgorithm),
        ("signature", core.OctetBitString),
        ("time_stamp", core.OctetBitString, {"explicit": 0, "optional": True}),
        ("time_stamp_untagged", core.OctetBitString, {"optional": True}),
    ]
