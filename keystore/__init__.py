"""Key management: key records, versions, envelope encryption (not yet built)."""
