"""Electronic seals (GB/T 38540) and sealed documents (not yet built)."""
