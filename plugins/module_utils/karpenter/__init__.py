"""Karpenter v1 domain core: CRD schema + CEL validation, lint, conversion and comparison.

Plain Python (stdlib + ``celpy`` from cel-python); imports neither ``ansible`` nor ``kubernetes``.
Modules: ``crds`` (generated CRD schemas), ``issues``, ``labels``, ``quantity``, ``schema``, ``cel``,
``validate``, ``lint``, ``convert``, ``compare``.
"""
