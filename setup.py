# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Packaging shim: the metadata lives in pyproject.toml.

Two installs give a working ``mim`` (which looks for
``<distribution location>/projects/.mim``):

* ``bash tools/install.sh`` runs ``python setup.py develop --no-deps``
  (setuptools < 80): an editable install whose location is the repository.
* ``pip install .``: a regular install; the wheel carries ``projects/.mim``
  (model-index.yml, configs/, tools/) as files.

A PEP 660 editable install (``pip install -e .``) records the distribution
in site-packages, where no ``projects/.mim`` exists, and mim's commands fail
with ``FileNotFoundError ... please upgrade your van-lska``. It is refused
with a message saying what to run instead, unless
``VAN_LSKA_EDITABLE_WITHOUT_MIM=1`` asks for it on purpose (imports work,
``mim search/download/train/test van-lska`` do not).
"""

import os

from setuptools import setup

#: Set to 1 to allow ``pip install -e .`` without mim support.
ALLOW_ENV = 'VAN_LSKA_EDITABLE_WITHOUT_MIM'

PEP660_REFUSED = f"""
van-lska: `pip install -e .` (a PEP 660 editable install) is not supported.
  It records the package in site-packages, where `mim` looks for
  projects/.mim (model index, configs, tools) and finds nothing, so
  `mim search/download/train/test van-lska` would fail.
  Instead use one of:
    bash tools/install.sh      editable, with the OpenMMLab stack and mim
                               (runs `python setup.py develop --no-deps`)
    pip install .              a regular (non-editable) install
  To get an editable install without mim support on purpose:
    {ALLOW_ENV}=1 pip install -e .
"""

cmdclass = {}
try:
    from setuptools.command.editable_wheel import editable_wheel
except ImportError:  # setuptools < 64 has no PEP 660 support at all
    editable_wheel = None

if editable_wheel is not None:

    class RefusingEditableWheel(editable_wheel):
        """PEP 660 editable wheel, refused unless asked for on purpose."""

        def run(self) -> None:
            if os.environ.get(ALLOW_ENV) != '1':
                raise SystemExit(PEP660_REFUSED)
            super().run()

    cmdclass['editable_wheel'] = RefusingEditableWheel

setup(cmdclass=cmdclass)
