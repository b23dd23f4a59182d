"""Electronic seals (GB/T 38540, GM/T 0031): formats, parsing, verification, building.

Modules: ``asn1`` (structures per generation), ``detect`` (which generation),
``parse`` (typed results), ``verify`` (check reports), ``build`` (v4 encoders).
Registry, lifecycle and the HTTP surface are not built yet.
"""
