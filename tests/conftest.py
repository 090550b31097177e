"""Shared pytest set-up: the checkout is importable as ansible_collections.karpenter_eks.platform."""

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, ".collections")
if not os.path.isdir(os.path.join(COLLECTIONS, "ansible_collections", "karpenter_eks", "platform")):
    raise RuntimeError("run `make test` (or scripts/bootstrap.sh) first: .collections/ link is missing")
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)  # tests/awslib.py, shared by the unit and integration tiers
