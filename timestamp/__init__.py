"""Trusted timestamp authority, RFC 3161 / GM/T 0033 (not yet built)."""
