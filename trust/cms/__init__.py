"""CMS SignedData (RFC 5652, GM/T 0010 / GB/T 35275): build and verify.

Shared by the TSA, the signing service and OFD. Modules: ``algorithms`` (digests,
signature OIDs, the RFC 5652 / GM/T 0010 ``CmsProfile``), ``signer`` (the
``CmsSigner`` protocol the keystore implements), ``build``, ``verify``.
"""

from __future__ import annotations

from trust.cms.algorithms import GMT0010, ID_CT_TSTINFO, RFC5652, CmsProfile
from trust.cms.build import (
    add_unsigned_attributes,
    build_signed_data,
    ess_cert_id_v2,
    timestamp_token_attribute,
)
from trust.cms.signer import CmsSigner, KeySigner, certificate_public_key
from trust.cms.verify import (
    SignedDataResult,
    SignerResult,
    load_content_info,
    verify_signed_data,
)

__all__ = [
    "GMT0010",
    "ID_CT_TSTINFO",
    "RFC5652",
    "CmsProfile",
    "CmsSigner",
    "KeySigner",
    "SignedDataResult",
    "SignerResult",
    "add_unsigned_attributes",
    "build_signed_data",
    "certificate_public_key",
    "ess_cert_id_v2",
    "load_content_info",
    "timestamp_token_attribute",
    "verify_signed_data",
]
