"""SM2 on OpenSSL >= 3.0 libcrypto through cffi in ABI mode (dlopen, no compiler).

Performance notes (the target is ``openssl speed sm2`` from Python):

- A handle builds its ``EVP_PKEY`` once; each thread then keeps its own
  ``EVP_MD_CTX`` / ``EVP_PKEY_CTX`` per handle and operation, so no context
  is ever shared between threads and none is rebuilt per call.
- Every sign/verify re-initialises the thread's context (as ``openssl speed``
  does) and sets the distinguishing ID explicitly, so the ID of a previous
  call can never leak into the next one.
- ``EVP_MD_CTX_FLAG_FINALISE`` tells ``EVP_DigestSignFinal`` it may finalise
  the context in place; without it OpenSSL 3.0 duplicates the whole signature
  context on every call to keep it reusable, which we do not need because we
  re-initialise anyway.
- cffi releases the GIL around each libcrypto call, so threads sign in parallel.
"""

from __future__ import annotations

import ctypes.util
import secrets
import threading
from collections.abc import Callable
from typing import Any

from cffi import FFI

from trust.errors import (
    BackendError,
    BackendUnavailable,
    DecryptionFailed,
    InvalidKey,
    InvalidLength,
    InvalidSignature,
)
from trust.sm2.backend import DEFAULT_SIGNER_ID, SM2PrivateHandle, SM2PublicHandle
from trust.sm2.curve import (
    FIELD_BYTES,
    MAX_SIGNER_ID_BYTES,
    POINT_BYTES,
    N,
    check_private_scalar,
    decode_point,
    is_on_curve,
)
from trust.sm2.encoding import der_to_raw, parse_cipher

_CDEF = """
typedef struct evp_pkey_st EVP_PKEY;
typedef struct evp_pkey_ctx_st EVP_PKEY_CTX;
typedef struct evp_md_ctx_st EVP_MD_CTX;
typedef struct evp_md_st EVP_MD;
typedef struct engine_st ENGINE;
typedef struct ossl_lib_ctx_st OSSL_LIB_CTX;
typedef struct ossl_param_st OSSL_PARAM;
typedef struct ossl_param_bld_st OSSL_PARAM_BLD;
typedef struct bignum_st BIGNUM;

unsigned long OpenSSL_version_num(void);

unsigned long ERR_get_error(void);
void ERR_error_string_n(unsigned long e, char *buf, size_t len);
void ERR_clear_error(void);

EVP_MD *EVP_MD_fetch(OSSL_LIB_CTX *ctx, const char *algorithm, const char *properties);
void EVP_MD_free(EVP_MD *md);
EVP_MD_CTX *EVP_MD_CTX_new(void);
void EVP_MD_CTX_free(EVP_MD_CTX *ctx);
void EVP_MD_CTX_set_flags(EVP_MD_CTX *ctx, int flags);
int EVP_DigestSignInit(EVP_MD_CTX *ctx, EVP_PKEY_CTX **pctx, const EVP_MD *type,
                       ENGINE *e, EVP_PKEY *pkey);
int EVP_DigestSign(EVP_MD_CTX *ctx, unsigned char *sigret, size_t *siglen,
                   const unsigned char *tbs, size_t tbslen);
int EVP_DigestVerifyInit(EVP_MD_CTX *ctx, EVP_PKEY_CTX **pctx, const EVP_MD *type,
                         ENGINE *e, EVP_PKEY *pkey);
int EVP_DigestVerify(EVP_MD_CTX *ctx, const unsigned char *sigret, size_t siglen,
                     const unsigned char *tbs, size_t tbslen);

EVP_PKEY_CTX *EVP_PKEY_CTX_new_from_name(OSSL_LIB_CTX *libctx, const char *name,
                                         const char *propquery);
EVP_PKEY_CTX *EVP_PKEY_CTX_new_from_pkey(OSSL_LIB_CTX *libctx, EVP_PKEY *pkey,
                                         const char *propquery);
void EVP_PKEY_CTX_free(EVP_PKEY_CTX *ctx);
int EVP_PKEY_CTX_set1_id(EVP_PKEY_CTX *ctx, const void *id, int len);
int EVP_PKEY_fromdata_init(EVP_PKEY_CTX *ctx);
int EVP_PKEY_fromdata(EVP_PKEY_CTX *ctx, EVP_PKEY **ppkey, int selection, OSSL_PARAM params[]);
void EVP_PKEY_free(EVP_PKEY *pkey);
int EVP_PKEY_get_bn_param(const EVP_PKEY *pkey, const char *key_name, BIGNUM **bn);
int EVP_PKEY_get_octet_string_param(const EVP_PKEY *pkey, const char *key_name,
                                    unsigned char *buf, size_t max_buf_sz, size_t *out_sz);
int EVP_PKEY_sign_init(EVP_PKEY_CTX *ctx);
int EVP_PKEY_sign(EVP_PKEY_CTX *ctx, unsigned char *sig, size_t *siglen,
                  const unsigned char *tbs, size_t tbslen);
int EVP_PKEY_verify_init(EVP_PKEY_CTX *ctx);
int EVP_PKEY_verify(EVP_PKEY_CTX *ctx, const unsigned char *sig, size_t siglen,
                    const unsigned char *tbs, size_t tbslen);
int EVP_PKEY_encrypt_init(EVP_PKEY_CTX *ctx);
int EVP_PKEY_encrypt(EVP_PKEY_CTX *ctx, unsigned char *out, size_t *outlen,
                     const unsigned char *in, size_t inlen);
int EVP_PKEY_decrypt_init(EVP_PKEY_CTX *ctx);
int EVP_PKEY_decrypt(EVP_PKEY_CTX *ctx, unsigned char *out, size_t *outlen,
                     const unsigned char *in, size_t inlen);

OSSL_PARAM_BLD *OSSL_PARAM_BLD_new(void);
void OSSL_PARAM_BLD_free(OSSL_PARAM_BLD *bld);
int OSSL_PARAM_BLD_push_utf8_string(OSSL_PARAM_BLD *bld, const char *key,
                                    const char *buf, size_t bsize);
int OSSL_PARAM_BLD_push_octet_string(OSSL_PARAM_BLD *bld, const char *key,
                                     const void *buf, size_t bsize);
int OSSL_PARAM_BLD_push_BN(OSSL_PARAM_BLD *bld, const char *key, const BIGNUM *bn);
OSSL_PARAM *OSSL_PARAM_BLD_to_param(OSSL_PARAM_BLD *bld);
void OSSL_PARAM_free(OSSL_PARAM *p);

BIGNUM *BN_secure_new(void);
BIGNUM *BN_bin2bn(const unsigned char *s, int len, BIGNUM *ret);
int BN_bn2binpad(const BIGNUM *a, unsigned char *to, int tolen);
void BN_clear_free(BIGNUM *a);

typedef struct ec_group_st EC_GROUP;
typedef struct ec_point_st EC_POINT;
typedef struct bignum_ctx BN_CTX;
EC_GROUP *EC_GROUP_new_by_curve_name(int nid);
void EC_GROUP_free(EC_GROUP *group);
EC_POINT *EC_POINT_new(const EC_GROUP *group);
void EC_POINT_free(EC_POINT *point);
int EC_POINT_mul(const EC_GROUP *group, EC_POINT *r, const BIGNUM *n,
                 const EC_POINT *q, const BIGNUM *m, BN_CTX *ctx);
size_t EC_POINT_point2oct(const EC_GROUP *group, const EC_POINT *p, int form,
                          unsigned char *buf, size_t len, BN_CTX *ctx);
"""

_MIN_VERSION = 0x30000000
_NID_SM2 = 1172
_POINT_CONVERSION_UNCOMPRESSED = 4
_EVP_PKEY_PUBLIC_KEY = 0x86  # EVP_PKEY_KEY_PARAMETERS | OSSL_KEYMGMT_SELECT_PUBLIC_KEY
_EVP_PKEY_KEYPAIR = 0x87  # EVP_PKEY_PUBLIC_KEY | OSSL_KEYMGMT_SELECT_PRIVATE_KEY
_EVP_MD_CTX_FLAG_FINALISE = 0x0200
_MAX_SIG_BYTES = 72  # DER SEQUENCE of two 33-byte INTEGERs
_DIGEST_BYTES = 32
# SM2Cipher overhead above the plaintext: SEQUENCE + 2 INTEGERs (<= 35 bytes each)
# + OCTET STRING(32) + OCTET STRING header; generous so the buffer is never short.
_CIPHER_OVERHEAD = 160


class _Lib:
    """The loaded libcrypto and the objects every handle shares (read-only after init)."""

    def __init__(self, path: str | None) -> None:
        ffi = FFI()
        ffi.cdef(_CDEF)
        name = path or ctypes.util.find_library("crypto")
        if name is None:
            raise BackendUnavailable("libcrypto not found")
        try:
            lib: Any = ffi.dlopen(name)
            version = int(lib.OpenSSL_version_num())
        except (OSError, AttributeError) as exc:
            raise BackendUnavailable(f"cannot load libcrypto {name!r}: {exc}") from exc
        if version < _MIN_VERSION:
            raise BackendUnavailable(f"libcrypto {version:#x} is older than 3.0")
        self.ffi = ffi
        self.lib = lib
        self.version = version
        sm3 = lib.EVP_MD_fetch(ffi.NULL, b"SM3", ffi.NULL)
        if sm3 == ffi.NULL:
            lib.ERR_clear_error()
            raise BackendUnavailable("libcrypto has no SM3")
        # Fetched once: implicit fetches by name inside every DigestSignInit cost a lookup.
        self.sm3 = ffi.gc(sm3, lib.EVP_MD_free)

    def error(self, what: str, cls: type[Exception] = BackendError) -> Exception:
        """An exception for a failed call, carrying (and clearing) this thread's error queue."""
        lib, ffi = self.lib, self.ffi
        reasons = []
        buf = ffi.new("char[256]")
        while code := lib.ERR_get_error():
            lib.ERR_error_string_n(code, buf, len(buf))
            reasons.append(ffi.string(buf).decode("ascii", "replace"))
        detail = f"{what} failed"
        if reasons:
            detail += ": " + "; ".join(reasons)
        return cls(detail)

    def pkey_from_params(self, selection: int, pub: bytes, priv: bytes | None) -> Any:
        """EVP_PKEY for group SM2 from a public point and optionally the scalar."""
        lib, ffi = self.lib, self.ffi
        bld = lib.OSSL_PARAM_BLD_new()
        bn = ffi.NULL
        params = ffi.NULL
        pctx = ffi.NULL
        try:
            if bld == ffi.NULL:
                raise self.error("OSSL_PARAM_BLD_new")
            ok = lib.OSSL_PARAM_BLD_push_utf8_string(bld, b"group", b"SM2", 0)
            ok = ok and lib.OSSL_PARAM_BLD_push_octet_string(bld, b"pub", pub, len(pub))
            if priv is not None:
                # A secure BIGNUM makes the builder keep the scalar in the secure heap,
                # which OSSL_PARAM_free wipes.
                bn = lib.BN_bin2bn(priv, len(priv), lib.BN_secure_new())
                ok = ok and bn != ffi.NULL and lib.OSSL_PARAM_BLD_push_BN(bld, b"priv", bn)
            if not ok:
                raise self.error("building SM2 key parameters")
            params = lib.OSSL_PARAM_BLD_to_param(bld)
            pctx = lib.EVP_PKEY_CTX_new_from_name(ffi.NULL, b"SM2", ffi.NULL)
            out = ffi.new("EVP_PKEY **")
            if (
                params == ffi.NULL
                or pctx == ffi.NULL
                or lib.EVP_PKEY_fromdata_init(pctx) != 1
                or lib.EVP_PKEY_fromdata(pctx, out, selection, params) != 1
            ):
                raise self.error("EVP_PKEY_fromdata", InvalidKey)
            return ffi.gc(out[0], lib.EVP_PKEY_free)
        finally:
            lib.EVP_PKEY_CTX_free(pctx)
            lib.OSSL_PARAM_free(params)
            lib.BN_clear_free(bn)
            lib.OSSL_PARAM_BLD_free(bld)

    def public_from_scalar(self, priv: bytes) -> bytes:
        """04||X||Y = d*G, computed by libcrypto."""
        lib, ffi = self.lib, self.ffi
        group = lib.EC_GROUP_new_by_curve_name(_NID_SM2)
        point = lib.EC_POINT_new(group) if group != ffi.NULL else ffi.NULL
        bn = lib.BN_bin2bn(priv, len(priv), lib.BN_secure_new())
        try:
            out = ffi.new("unsigned char[]", POINT_BYTES)
            if (
                point == ffi.NULL
                or bn == ffi.NULL
                or lib.EC_POINT_mul(group, point, bn, ffi.NULL, ffi.NULL, ffi.NULL) != 1
                or lib.EC_POINT_point2oct(
                    group, point, _POINT_CONVERSION_UNCOMPRESSED, out, POINT_BYTES, ffi.NULL
                )
                != POINT_BYTES
            ):
                raise self.error("computing the SM2 public key")
            return bytes(ffi.buffer(out))
        finally:
            lib.BN_clear_free(bn)
            lib.EC_POINT_free(point)
            lib.EC_GROUP_free(group)

    def new_pkey_ctx(self, pkey: Any, init: Callable[[Any], int], what: str) -> Any:
        lib, ffi = self.lib, self.ffi
        pctx = lib.EVP_PKEY_CTX_new_from_pkey(ffi.NULL, pkey, ffi.NULL)
        if pctx == ffi.NULL:
            raise self.error("EVP_PKEY_CTX_new_from_pkey")
        pctx = ffi.gc(pctx, lib.EVP_PKEY_CTX_free)
        if init(pctx) != 1:
            raise self.error(what)
        return pctx

    def new_md_ctx(self) -> Any:
        lib, ffi = self.lib, self.ffi
        ctx = lib.EVP_MD_CTX_new()
        if ctx == ffi.NULL:
            raise self.error("EVP_MD_CTX_new")
        lib.EVP_MD_CTX_set_flags(ctx, _EVP_MD_CTX_FLAG_FINALISE)
        return ffi.gc(ctx, lib.EVP_MD_CTX_free)


class _Scratch:
    """Per-thread, per-handle contexts and output buffers (never shared between threads)."""

    __slots__ = ("md_ctx", "pctx_out", "pkey_ctx", "out", "outlen")

    def __init__(self, lib: _Lib) -> None:
        ffi = lib.ffi
        self.md_ctx = lib.new_md_ctx()
        self.pctx_out = ffi.new("EVP_PKEY_CTX **")
        self.pkey_ctx: Any = None  # EVP_PKEY_sign/verify/encrypt/decrypt context, made on demand
        self.out = ffi.new("unsigned char[]", _MAX_SIG_BYTES)
        self.outlen = ffi.new("size_t *")


def _check_id(signer_id: bytes) -> None:
    if len(signer_id) > MAX_SIGNER_ID_BYTES:
        raise InvalidLength(f"SM2 signer ID longer than {MAX_SIGNER_ID_BYTES} bytes")


class OpenSSLPublicKey:
    __slots__ = ("_lib", "_pkey", "_point", "_local_verify", "_local_digest", "_local_enc")

    def __init__(self, lib: _Lib, pkey: Any, point: bytes) -> None:
        self._lib = lib
        self._pkey = pkey
        self._point = point
        self._local_verify = threading.local()
        self._local_digest = threading.local()
        self._local_enc = threading.local()

    def public_bytes(self) -> bytes:
        return self._point

    def _verify_scratch(self) -> _Scratch:
        scratch: _Scratch | None = getattr(self._local_verify, "s", None)
        if scratch is None:
            scratch = self._local_verify.s = _Scratch(self._lib)
        return scratch

    def verify(
        self, message: bytes, signature: bytes, signer_id: bytes = DEFAULT_SIGNER_ID
    ) -> None:
        _check_id(signer_id)
        der_to_raw(signature)  # strict DER and range checks, same rules as every backend
        lib = self._lib
        ll = lib.lib
        s = self._verify_scratch()
        if ll.EVP_DigestVerifyInit(s.md_ctx, s.pctx_out, lib.sm3, lib.ffi.NULL, self._pkey) != 1:
            raise lib.error("EVP_DigestVerifyInit")
        if ll.EVP_PKEY_CTX_set1_id(s.pctx_out[0], signer_id, len(signer_id)) != 1:
            raise lib.error("EVP_PKEY_CTX_set1_id")
        if ll.EVP_DigestVerify(s.md_ctx, signature, len(signature), message, len(message)) != 1:
            ll.ERR_clear_error()
            raise InvalidSignature("SM2 signature does not verify")

    def verify_digest(self, e: bytes, signature: bytes) -> None:
        if len(e) != _DIGEST_BYTES:
            raise InvalidLength("SM2 digest e must be 32 bytes")
        der_to_raw(signature)
        lib = self._lib
        ctx: Any = getattr(self._local_digest, "c", None)
        if ctx is None:
            ctx = self._local_digest.c = lib.new_pkey_ctx(
                self._pkey, lib.lib.EVP_PKEY_verify_init, "EVP_PKEY_verify_init"
            )
        if lib.lib.EVP_PKEY_verify(ctx, signature, len(signature), e, len(e)) != 1:
            lib.lib.ERR_clear_error()
            raise InvalidSignature("SM2 signature does not verify")

    def encrypt(self, plaintext: bytes) -> bytes:
        if not plaintext:
            raise InvalidLength("SM2 plaintext must not be empty")
        lib = self._lib
        ctx: Any = getattr(self._local_enc, "c", None)
        if ctx is None:
            ctx = self._local_enc.c = lib.new_pkey_ctx(
                self._pkey, lib.lib.EVP_PKEY_encrypt_init, "EVP_PKEY_encrypt_init"
            )
        size = len(plaintext) + _CIPHER_OVERHEAD
        out = lib.ffi.new("unsigned char[]", size)
        outlen = lib.ffi.new("size_t *", size)
        if lib.lib.EVP_PKEY_encrypt(ctx, out, outlen, plaintext, len(plaintext)) != 1:
            raise lib.error("SM2 encryption")
        return bytes(lib.ffi.buffer(out, outlen[0]))


class OpenSSLPrivateKey:
    __slots__ = ("_lib", "_pkey", "_public", "_local_sign", "_local_digest", "_local_dec")

    def __init__(self, lib: _Lib, pkey: Any, public: OpenSSLPublicKey) -> None:
        self._lib = lib
        self._pkey = pkey
        self._public = public
        self._local_sign = threading.local()
        self._local_digest = threading.local()
        self._local_dec = threading.local()

    def public_bytes(self) -> bytes:
        return self._public.public_bytes()

    def public_handle(self) -> SM2PublicHandle:
        return self._public

    def sign(self, message: bytes, signer_id: bytes = DEFAULT_SIGNER_ID) -> bytes:
        _check_id(signer_id)
        lib = self._lib
        ll = lib.lib
        s: _Scratch | None = getattr(self._local_sign, "s", None)
        if s is None:
            s = self._local_sign.s = _Scratch(lib)
        if ll.EVP_DigestSignInit(s.md_ctx, s.pctx_out, lib.sm3, lib.ffi.NULL, self._pkey) != 1:
            raise lib.error("EVP_DigestSignInit")
        if ll.EVP_PKEY_CTX_set1_id(s.pctx_out[0], signer_id, len(signer_id)) != 1:
            raise lib.error("EVP_PKEY_CTX_set1_id")
        s.outlen[0] = _MAX_SIG_BYTES
        if ll.EVP_DigestSign(s.md_ctx, s.out, s.outlen, message, len(message)) != 1:
            raise lib.error("EVP_DigestSign")
        return bytes(lib.ffi.buffer(s.out, s.outlen[0]))

    def sign_digest(self, e: bytes) -> bytes:
        if len(e) != _DIGEST_BYTES:
            raise InvalidLength("SM2 digest e must be 32 bytes")
        lib = self._lib
        s: _Scratch | None = getattr(self._local_digest, "s", None)
        if s is None:
            s = _Scratch(lib)
            s.pkey_ctx = lib.new_pkey_ctx(
                self._pkey, lib.lib.EVP_PKEY_sign_init, "EVP_PKEY_sign_init"
            )
            self._local_digest.s = s
        s.outlen[0] = _MAX_SIG_BYTES
        if lib.lib.EVP_PKEY_sign(s.pkey_ctx, s.out, s.outlen, e, len(e)) != 1:
            raise lib.error("EVP_PKEY_sign")
        return bytes(lib.ffi.buffer(s.out, s.outlen[0]))

    def decrypt(self, ciphertext: bytes) -> bytes:
        x1, y1, _, _ = parse_cipher(ciphertext)
        if not is_on_curve(x1, y1):
            raise DecryptionFailed("SM2 ciphertext C1 is not on the curve")
        lib = self._lib
        ctx: Any = getattr(self._local_dec, "c", None)
        if ctx is None:
            ctx = self._local_dec.c = lib.new_pkey_ctx(
                self._pkey, lib.lib.EVP_PKEY_decrypt_init, "EVP_PKEY_decrypt_init"
            )
        # Some 3.0.x releases estimate the plaintext size from the DER length, above len(C2).
        size = len(ciphertext)
        out = lib.ffi.new("unsigned char[]", size)
        outlen = lib.ffi.new("size_t *", size)
        if lib.lib.EVP_PKEY_decrypt(ctx, out, outlen, ciphertext, len(ciphertext)) != 1:
            raise lib.error("SM2 decryption", DecryptionFailed)
        return bytes(lib.ffi.buffer(out, outlen[0]))


class OpenSSLBackend:
    name = "openssl"

    def __init__(self, libcrypto_path: str | None = None) -> None:
        self._lib = _Lib(libcrypto_path)
        # Probe SM2 end to end: a libcrypto built with no-sm2 fails here, not later.
        probe = self.load_private((1).to_bytes(FIELD_BYTES, "big"))
        probe.public_handle().verify(b"", probe.sign(b""))

    @property
    def version(self) -> int:
        """OpenSSL_version_num() of the loaded libcrypto."""
        return self._lib.version

    def generate(self) -> SM2PrivateHandle:
        return self.load_private((secrets.randbelow(N - 2) + 1).to_bytes(FIELD_BYTES, "big"))

    def load_private(self, scalar: bytes) -> SM2PrivateHandle:
        check_private_scalar(scalar)
        lib = self._lib
        point = lib.public_from_scalar(scalar)
        pkey = lib.pkey_from_params(_EVP_PKEY_KEYPAIR, point, scalar)
        public = OpenSSLPublicKey(
            lib, lib.pkey_from_params(_EVP_PKEY_PUBLIC_KEY, point, None), point
        )
        return OpenSSLPrivateKey(lib, pkey, public)

    def load_public(self, point: bytes) -> SM2PublicHandle:
        decode_point(point)
        point = bytes(point)
        return OpenSSLPublicKey(
            self._lib, self._lib.pkey_from_params(_EVP_PKEY_PUBLIC_KEY, point, None), point
        )

    def private_scalar(self, handle: SM2PrivateHandle) -> bytes:
        if not isinstance(handle, OpenSSLPrivateKey) or handle._lib is not self._lib:
            raise InvalidKey("handle does not belong to this OpenSSL SM2 backend")
        lib, ffi = self._lib.lib, self._lib.ffi
        bn = ffi.new("BIGNUM **")
        out = ffi.new("unsigned char[]", FIELD_BYTES)
        try:
            if (
                lib.EVP_PKEY_get_bn_param(handle._pkey, b"priv", bn) != 1
                or lib.BN_bn2binpad(bn[0], out, FIELD_BYTES) != FIELD_BYTES
            ):
                raise self._lib.error("reading the SM2 private scalar")
            return bytes(ffi.buffer(out))
        finally:
            lib.BN_clear_free(bn[0])
            ffi.memmove(out, b"\x00" * FIELD_BYTES, FIELD_BYTES)
