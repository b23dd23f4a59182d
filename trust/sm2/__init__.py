"""SM2 (GM/T 0003): curve, Z value, encodings and the interchangeable backends."""
