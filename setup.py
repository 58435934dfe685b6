# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""Packaging of the VAN-LSKA suite.

Install it editable (``bash tools/install.sh`` does): ``mim`` then finds our
model zoo through ``projects/.mim`` (links to ``model-index.yml``,
``configs/`` and ``tools/``), as it finds mmdet's through ``mmdet/.mim``.
"""
import re
from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent


def version() -> str:
    text = (HERE / 'projects' / 'van_lska' / '__init__.py').read_text()
    return re.search(r"__version__ = '([^']+)'", text).group(1)


def requirements(name: str) -> list:
    lines = (HERE / 'requirements' / name).read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and ln[0] != '#']


setup(
    name='van-lska',
    version=version(),
    description='VAN-LKA and VAN-LSKA backbones for mmpretrain, mmdet and '
    'mmseg',
    long_description=(HERE / 'README.md').read_text(encoding='utf-8'),
    long_description_content_type='text/markdown',
    license='Apache-2.0',
    python_requires='>=3.9',
    packages=find_packages(include=['projects', 'projects.*']),
    include_package_data=True,
    install_requires=requirements('runtime.txt'),
    extras_require={'tests': requirements('tests.txt')},
    zip_safe=False,
)
