#!/usr/bin/env python3
"""Prints the SHA-256 of a file (the reference for brainmap's own digest of model files)."""
import hashlib, sys
print(hashlib.sha256(open(sys.argv[1], "rb").read()).hexdigest())
