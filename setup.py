# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Packaging shim: the metadata lives in pyproject.toml.

``tools/install.sh`` runs ``python setup.py develop --no-deps`` (setuptools
< 80) for the editable install: unlike a PEP 660 editable install it makes
the distribution's location the repository itself, which is where ``mim``
looks for ``projects/.mim/model-index.yml``, ``configs/`` and ``tools/``.
"""

from setuptools import setup

setup()
