"""Certificate authority: SM2/ECDSA/RSA certificates, CRLs, OCSP (not yet built)."""
