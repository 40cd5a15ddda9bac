"""Sample HTTP services and a chaos monkey for ``novacron demo`` and the healing benchmark."""
