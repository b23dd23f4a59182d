"""ASN.1 of the three seal generations, one module each, on asn1crypto.

``common`` holds the parts every generation shares; ``v1`` is GM/T 0031-2014,
``v4`` GB/T 38540-2020, ``v5`` GM/T 0031-2025; ``raw`` splits DER into element
bytes so that signed parts are verified exactly as they were found. Field names
follow the standard's names in snake case. Source: standards.md §1.
"""
