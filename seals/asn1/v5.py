"""GM/T 0031-2025 (v5): as v4, plus an optional timestamp on the seal itself."""

from __future__ import annotations

from asn1crypto import core

from seals.asn1.common import ExtensionDatas, SignAlgorithm
from seals.asn1.v4 import SESSealInfo


class SESeal(core.Sequence):
    _fields = [
        ("e_seal_info", SESSealInfo),
        ("cert", core.OctetString),
        ("sign_alg_id", SignAlgorithm),
        ("signed_value", core.OctetBitString),
        ("time_stamp", core.OctetBitString, {"explicit": 0, "optional": True}),
        ("time_stamp_untagged", core.OctetBitString, {"optional": True}),
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
        ("cert", core.OctetString),
        ("signature_alg_id", SignAlgorithm),
        ("signature", core.OctetBitString),
        ("time_stamp", core.OctetBitString, {"explicit": 0, "optional": True}),
        ("time_stamp_untagged", core.OctetBitString, {"optional": True}),
    ]
