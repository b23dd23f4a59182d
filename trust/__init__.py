"""Shared kernel: algorithms, ASN.1, errors, settings, storage, audit, coordination."""
