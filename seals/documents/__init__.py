"""Sealed documents: OFD (GB/T 33190) and PDF (PAdES) stamping and verification."""
