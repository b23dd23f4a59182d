"""The one error hierarchy of the service.

Every error carries a stable machine ``code`` (snake_case, never renamed once
released) and an HTTP ``status`` that ``api/errors.py`` uses when it turns the
error into RFC 9457 problem+json. Messages must never contain secrets or key
material: they are shown to clients and written to logs.
"""

from __future__ import annotations

from typing import Any, ClassVar


class TrustError(Exception):
    """Base of every error the service raises on purpose."""

    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500
    title: ClassVar[str] = "Internal error"

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        # Extra, non-secret fields that go into the problem document.
        self.extra = extra

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, detail={self.detail!r})"


# --- input -----------------------------------------------------------------


class BadRequest(TrustError):
    code = "bad_request"
    status = 400
    title = "Bad request"


class MalformedASN1(BadRequest):
    """DER/BER that does not parse, or parses to the wrong structure."""

    code = "bad_request_asn1"
    title = "Malformed ASN.1"


class MalformedEncoding(BadRequest):
    """PEM, base64, hex or another text encoding that does not decode."""

    code = "bad_request_encoding"
    title = "Malformed encoding"


class MalformedJSON(BadRequest):
    """A request body that is not well-formed JSON."""

    code = "bad_request_json"
    title = "Malformed JSON"


class InvalidLength(BadRequest):
    code = "bad_request_length"
    title = "Wrong length"


class UnsupportedAlgorithm(BadRequest):
    code = "unsupported_algorithm"
    title = "Unsupported algorithm"


class UnknownOID(BadRequest):
    code = "unknown_oid"
    title = "Unknown object identifier"


class UnsupportedSealVersion(BadRequest):
    """An electronic seal or signature whose layout or header version is none of v1, v4, v5."""

    code = "unsupported_seal_version"
    title = "Unsupported seal version"


class InvalidKey(BadRequest):
    """Key material that is malformed or mathematically invalid (e.g. a point off the curve)."""

    code = "invalid_key"
    title = "Invalid key"


class InvalidSignatureEncoding(BadRequest):
    """A signature that is not well formed (bad DER, r or s out of range)."""

    code = "invalid_signature_encoding"
    title = "Malformed signature"


class ValidationFailed(BadRequest):
    code = "validation_failed"
    title = "Request validation failed"
    status = 422


class PayloadTooLarge(TrustError):
    code = "payload_too_large"
    status = 413
    title = "Request body too large"


class UnsupportedMediaType(TrustError):
    code = "unsupported_media_type"
    status = 415
    title = "Unsupported media type"


class MethodNotAllowed(TrustError):
    code = "method_not_allowed"
    status = 405
    title = "Method not allowed"


# --- cryptographic outcomes ------------------------------------------------


class CryptoError(TrustError):
    code = "crypto_error"
    status = 400
    title = "Cryptographic operation failed"


class InvalidSignature(CryptoError):
    """A well-formed signature that does not verify."""

    code = "invalid_signature"
    title = "Signature does not verify"


class DecryptionFailed(CryptoError):
    code = "decryption_failed"
    title = "Decryption failed"


class BackendError(TrustError):
    """The crypto backend (libcrypto, HSM) failed for a reason that is not the input's fault."""

    code = "crypto_backend_error"
    status = 500
    title = "Cryptographic backend failure"


class BackendUnavailable(BackendError):
    code = "crypto_backend_unavailable"
    status = 503
    title = "Cryptographic backend unavailable"


# --- authentication and authorisation --------------------------------------


class Unauthenticated(TrustError):
    code = "unauthenticated"
    status = 401
    title = "Authentication required"


class TokenExpired(Unauthenticated):
    code = "token_expired"
    title = "Token expired"


class TokenRevoked(Unauthenticated):
    code = "token_revoked"
    title = "Token revoked"


class Forbidden(TrustError):
    code = "forbidden"
    status = 403
    title = "Not allowed"


# --- resources and state ---------------------------------------------------


class NotFound(TrustError):
    code = "not_found"
    status = 404
    title = "Not found"


class KeyNotFound(NotFound):
    code = "key_not_found"
    title = "Key not found"


class Conflict(TrustError):
    code = "conflict"
    status = 409
    title = "Conflict"


class InvalidStateTransition(Conflict):
    code = "invalid_state_transition"
    title = "State transition not allowed"


# Key-state transitions the SP 800-57 state machine refuses, one code per reason.


class KeyStateUnchanged(InvalidStateTransition):
    code = "key_state_unchanged"
    title = "Key is already in that state"


class KeyAlreadyDestroyed(InvalidStateTransition):
    code = "key_already_destroyed"
    title = "Key is destroyed; it has no further states"


class KeyAlreadyCompromised(InvalidStateTransition):
    code = "key_already_compromised"
    title = "A compromised key can only be destroyed"


class KeyAlreadyDeactivated(InvalidStateTransition):
    code = "key_already_deactivated"
    title = "A deactivated key cannot be used for protection again"


class KeyNeverActivated(InvalidStateTransition):
    code = "key_never_activated"
    title = "A key that was never activated cannot be suspended or deactivated"


class KeyActivationIrreversible(InvalidStateTransition):
    code = "key_activation_irreversible"
    title = "A key cannot return to pre-activation"


class KeyDestructionNeedsDeactivation(InvalidStateTransition):
    code = "key_destruction_needs_deactivation"
    title = "Deactivate the key before destroying it"


class DestructionNotScheduled(Conflict):
    code = "key_destruction_not_scheduled"
    title = "No destruction is scheduled for this key"


class KeyUnusable(Conflict):
    """The key exists but its state or validity period forbids this use."""

    code = "key_unusable"
    title = "Key cannot be used now"


class KeySuspended(KeyUnusable):
    code = "key_suspended"
    title = "Key is suspended"


class KeyNotActive(KeyUnusable):
    code = "key_not_active"
    title = "Key is not active"


class KeyExpired(KeyUnusable):
    code = "key_expired"
    title = "Key is past its expiry time"


class KeyDestroyed(KeyUnusable):
    code = "key_destroyed"
    title = "Key material has been destroyed"


class KeyBoundToTsaUnit(Conflict):
    """A TSA unit's certificate certifies this key version: the unit rotates it."""

    code = "key_bound_to_tsa_unit"
    title = "Key belongs to a TSA unit; rotate the unit (trustctl tsa rotate)"


class TsaPolicyInvalid(BadRequest):
    code = "tsa_policy_invalid"
    title = "A TSA policy is a dotted object identifier"


class KeyPurposeMismatch(BadRequest):
    code = "key_purpose_mismatch"
    title = "Key is not for this operation"


class KeystoreNotEmpty(Conflict):
    code = "keystore_not_empty"
    title = "A backup restores only into an empty key store"


class BackupMalformed(BadRequest):
    code = "backup_malformed"
    title = "Not a key store backup bundle"


class BackupPassphraseInvalid(DecryptionFailed):
    """GCM cannot tell a wrong passphrase from a damaged bundle; the former is far likelier."""

    code = "backup_passphrase_invalid"
    title = "Wrong backup passphrase, or the bundle is damaged"


class IdempotencyConflict(Conflict):
    """The same Idempotency-Key was reused with a different request, or is still in progress."""

    code = "idempotency_conflict"
    title = "Idempotency key conflict"


class ResourceBusy(Conflict):
    """A distributed lock could not be acquired within its wait timeout."""

    code = "resource_busy"
    title = "Resource is busy"


class RateLimited(TrustError):
    code = "rate_limited"
    status = 429
    title = "Too many requests"


# --- certificate authority ---------------------------------------------------


class CaNotFound(NotFound):
    code = "ca_not_found"
    title = "Certificate authority not found"


class CertificateNotFound(NotFound):
    code = "certificate_not_found"
    title = "Certificate not found"


class ProfileNotFound(NotFound):
    code = "profile_not_found"
    title = "Certificate profile not found"


class CsrSignatureInvalid(InvalidSignature):
    """A PKCS#10 request whose self-signature (proof of possession) does not verify."""

    code = "csr_signature_invalid"
    title = "Certificate request signature does not verify"


class ProfileViolation(ValidationFailed):
    """An issuance request that breaks its certificate profile's rules."""

    code = "profile_violation"
    title = "Request breaks the certificate profile"


class ProfileKeyNotAllowed(ProfileViolation):
    code = "profile_key_not_allowed"
    title = "Key algorithm not allowed by the profile"


class ProfileSubjectInvalid(ProfileViolation):
    code = "profile_subject_invalid"
    title = "Subject does not meet the profile"


class SubjectAttributeTooLong(ProfileSubjectInvalid):
    """A subject attribute longer than its RFC 5280 upper bound (ub-common-name 64...)."""

    code = "subject_attribute_too_long"
    title = "Subject attribute exceeds its RFC 5280 upper bound"


class ProfileSanInvalid(ProfileViolation):
    code = "profile_san_invalid"
    title = "Subject alternative names do not meet the profile"


class ProfileValidityTooLong(ProfileViolation):
    code = "profile_validity_too_long"
    title = "Requested validity exceeds the profile maximum"


class CaUnusable(Conflict):
    """The CA exists but cannot issue now (no certificate yet, expired, not a CA)."""

    code = "ca_unusable"
    title = "Certificate authority cannot issue"


class CaNameTaken(Conflict):
    code = "ca_name_taken"
    title = "A certificate authority with that name exists"


class CertificateAlreadyRevoked(Conflict):
    code = "certificate_already_revoked"
    title = "Certificate is already revoked for another reason"


class CertificateNotOnHold(Conflict):
    code = "certificate_not_on_hold"
    title = "Certificate is not on hold"


class CertificateNotEscrowed(Conflict):
    """Key recovery asked for a certificate whose key is not held in escrow."""

    code = "certificate_not_escrowed"
    title = "Certificate has no escrowed key"


class EscrowRecipientInvalid(Conflict):
    """An escrowed key may only be enveloped for a good SM2 signing certificate of this CA."""

    code = "escrow_recipient_invalid"
    title = "Certificate cannot receive an escrowed key"


# --- signers -----------------------------------------------------------------


class SignerNotFound(NotFound):
    code = "signer_not_found"
    title = "Signer not found"


class SignerDisabled(Conflict):
    code = "signer_disabled"
    title = "Signer is disabled"


class SignerCertificateMismatch(BadRequest):
    """An imported certificate (or chain) that does not fit the signer's key."""

    code = "signer_certificate_mismatch"
    title = "Certificate does not match the signer's key or chain"


class TsaUnitUnavailable(Conflict):
    """A signature timestamp was asked for, but the service has no TSA unit to make it
    (none configured yet): refused before anything is signed."""

    code = "tsa_unit_unavailable"
    title = "No time-stamp unit to stamp the signature"


# --- sealed documents (OFD, PDF) ---------------------------------------------


class DocumentMalformed(BadRequest):
    """A document package that does not have the structure its format requires."""

    code = "document_malformed"
    title = "Malformed document"


class DocumentArchiveUnsafe(DocumentMalformed):
    """A zip package refused before extraction: bomb, traversal, duplicates, too many entries."""

    code = "document_archive_unsafe"
    title = "Unsafe document archive"


class DocumentXmlInvalid(DocumentMalformed):
    """XML that is not well formed, declares a DTD or entities, or is in the wrong namespace."""

    code = "document_xml_invalid"
    title = "Invalid XML in document"


class DocumentTooLarge(PayloadTooLarge):
    code = "document_too_large"
    title = "Document too large"


class UnsupportedDocumentFormat(UnsupportedMediaType):
    code = "unsupported_document_format"
    title = "Unsupported document format"


class DocumentProtected(Conflict):
    """A document whose existing signature protects it wholly: no further signature."""

    code = "document_protected"
    title = "Document is protected against further signatures"


class DocumentPageNotFound(ValidationFailed):
    code = "document_page_not_found"
    title = "No such page in the document"


class PdfMalformed(DocumentMalformed):
    """A file that is not a PDF, or whose structure (xref, trailer, objects) does not parse."""

    code = "pdf_malformed"
    title = "Malformed PDF"


class PdfUnsupported(BadRequest):
    """A well-formed PDF using something this service does not handle (encryption)."""

    code = "pdf_unsupported"
    title = "PDF feature not supported"


class DocumentTooComplex(TrustError):
    """A document whose parsing exceeds the time or memory bound of its worker process
    (e.g. a crafted PDF with megabytes of objects pyHanko tokenizes in Python)."""

    code = "document_too_complex"
    status = 422
    title = "Document too complex to process within the service's limits"


class StampOutsidePage(ValidationFailed):
    code = "stamp_outside_page"
    title = "The stamp does not fit on the page at that position"


# --- electronic seals ----------------------------------------------------------


class SealNotFound(NotFound):
    code = "seal_not_found"
    title = "Seal not found"


class SealStateConflict(InvalidStateTransition):
    code = "seal_state_conflict"
    title = "The seal's status does not allow this operation"


class SealApprovalRefused(Conflict):
    """The applicant approving its own seal, or an officer approving twice."""

    code = "seal_approval_refused"
    title = "Approval refused"


class SealNotActive(Conflict):
    code = "seal_not_active"
    title = "The seal is not active"


class SealExpired(SealNotActive):
    code = "seal_expired"
    title = "The seal has expired"


class SignerNotInSeal(Forbidden):
    code = "signer_not_in_seal"
    title = "The signer's certificate is not in the seal's list"


class SignerCertificateRevoked(Conflict):
    code = "signer_certificate_revoked"
    title = "The signer's certificate is revoked or on hold"


class SignerCertificateExpired(Conflict):
    code = "signer_certificate_expired"
    title = "The signer's certificate is expired or not yet valid"


class SignerRevocationUnknown(Conflict):
    """A stamp asked for revocation data (``hard-fail``/``require``) for a signer
    certificate from another CA, and the CRLs and OCSP responses given do not answer."""

    code = "signer_revocation_unknown"
    title = "The signer certificate's revocation status could not be established"


class SealMakerCertificateRevoked(Conflict):
    code = "seal_maker_certificate_revoked"
    title = "The seal maker's certificate is revoked or on hold"


class SealImageInvalid(ValidationFailed):
    code = "seal_image_invalid"
    title = "The seal image is not a PNG or SVG picture"


class SealImageUnsupported(SealImageInvalid):
    """An SVG seal picture that cannot be drawn on a PDF stamp: malformed, or referring to
    files, URLs or a DTD (OFD stamps carry the SVG as it is)."""

    code = "seal_image_unsupported"
    title = "The seal's picture cannot be drawn on this document format"


class TimestampUnavailable(TrustError):
    code = "timestamp_unavailable"
    status = 503
    title = "No time-stamp authority is available"


# --- infrastructure --------------------------------------------------------


class ServiceUnavailable(TrustError):
    code = "service_unavailable"
    status = 503
    title = "Service unavailable"


class CoordinationUnavailable(ServiceUnavailable):
    """Redis (or another coordination backend) cannot be reached; fail closed."""

    code = "coordination_unavailable"
    title = "Coordination backend unavailable"


class StorageUnavailable(ServiceUnavailable):
    code = "storage_unavailable"
    title = "Database unavailable"


class MigrationRequired(ServiceUnavailable):
    code = "migration_required"
    title = "Database schema is not up to date"


class ConfigurationError(TrustError):
    code = "configuration_error"
    status = 500
    title = "Configuration error"


class AuditChainBroken(TrustError):
    code = "audit_chain_broken"
    status = 500
    title = "Audit log integrity check failed"


class AuditRecordRefused(TrustError):
    """An audit record the service must not write (details that could hold a secret, bad fields).

    Raised on the service's own misuse, never on client input, hence a 500.
    """

    code = "audit_record_refused"
    status = 500
    title = "Audit record refused"
