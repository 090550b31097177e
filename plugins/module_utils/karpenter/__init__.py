"""Karpenter v1 domain core: CRD schema + CEL validation, lint, conversion and comparison.

Plain Python (stdlib + ``celpy`` from cel-python); imports neither ``ansible`` nor ``kubernetes``.
Modules: ``crds`` (generated CRD schemas and upstream KubeletConfiguration types), ``issues``, ``labels``,
``quantity``, ``schema``, ``cel``, ``kubelet`` (the controller's EC2NodeClass spec.kubelet checks),
``validate``, ``lint``, ``convert``, ``compare``.
"""
