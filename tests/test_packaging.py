# Copyright (c) VAN-LSKA suite contributors. All rights reserved.
"""The package lives beside other OpenMMLab checkouts, and every supported
install gives a working ``mim``.

* ``projects`` is a namespace package: a checkout's own ``projects/<name>``
  (mmdet's ``projects.ViTDet``, say) still imports beside ours.
* The README install (``setup.py develop``, what this test session runs in)
  and ``pip install .`` in a fresh virtual environment both let
  ``mim search van-lska`` list the model zoo.
* ``pip install -e .`` (PEP 660) is refused with a message that names what
  to run instead (see ``setup.py``).
"""

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
IGNORED = shutil.ignore_patterns(
    '.git', 'build', 'dist', '*.egg-info', 'work_dirs', 'data', '__pycache__'
)


def run(cmd, cwd, env=None, check=True) -> subprocess.CompletedProcess:
    out = subprocess.run(
        cmd,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check and out.returncode != 0:
        raise AssertionError(
            f'{cmd} failed ({out.returncode}):\n{out.stdout}\n{out.stderr}'
        )
    return out


def test_projects_is_a_namespace_package():
    import projects
    import projects.van_lska

    assert getattr(projects, '__file__', None) is None  # PEP 420
    assert not (REPO / 'projects' / '__init__.py').exists()
    assert Path(projects.van_lska.__file__).parent == REPO / 'projects' / (
        'van_lska'
    )


def test_other_checkouts_projects_still_import(tmp_path):
    """An mmdet-style checkout with ``projects/ViTDet/vitdet`` (no
    ``projects/__init__.py``, as in mmdet/mmseg/mmpretrain): run from its
    root, both its project and ours import in one interpreter, whichever
    is imported first."""
    checkout = tmp_path / 'mmdetection'
    (checkout / 'projects' / 'ViTDet' / 'vitdet').mkdir(parents=True)
    (checkout / 'projects' / 'ViTDet' / 'vitdet' / '__init__.py').write_text(
        'NAME = "vitdet"\n'
    )
    for first, second in (
        ('projects.ViTDet.vitdet', 'projects.van_lska'),
        ('projects.van_lska', 'projects.ViTDet.vitdet'),
    ):
        code = textwrap.dedent(
            f"""
            import importlib
            a = importlib.import_module({first!r})
            b = importlib.import_module({second!r})
            import projects.ViTDet.vitdet as v
            import projects.van_lska as ours
            assert v.NAME == 'vitdet'
            assert ours.VAN_LSKA.__name__ == 'VAN_LSKA'
            print('ok')
            """
        )
        out = run([sys.executable, '-c', code], cwd=checkout)
        assert out.stdout.strip().endswith('ok')


@pytest.fixture(scope='module')
def venv(tmp_path_factory):
    """A fresh virtual environment that sees the installed stack (torch,
    mmcv, mm*) but holds its own van-lska install."""
    root = tmp_path_factory.mktemp('venv')
    run(
        [sys.executable, '-m', 'venv', '--system-site-packages', str(root)],
        cwd=root,
    )
    return root / 'bin' / 'python'


@pytest.fixture(scope='module')
def source_copy(tmp_path_factory):
    """The repository's files (symlinks kept), so builds leave no
    ``build/`` folder in the checkout."""
    dst = tmp_path_factory.mktemp('src') / 'van-lska'
    shutil.copytree(REPO, dst, symlinks=True, ignore=IGNORED)
    return dst


def _pip_env() -> dict:
    env = dict(os.environ)
    env.pop('VAN_LSKA_EDITABLE_WITHOUT_MIM', None)
    env.pop('PYTHONPATH', None)  # the venv must import its own install
    env['PIP_DISABLE_PIP_VERSION_CHECK'] = '1'
    return env


@pytest.mark.slow
def test_pip_install_gives_working_mim(venv, source_copy, tmp_path):
    run(
        [str(venv), '-m', 'pip', 'install', '--no-deps']
        + ['--no-build-isolation', str(source_copy)],
        cwd=tmp_path,
        env=_pip_env(),
    )
    where = run(
        [
            str(venv),
            '-c',
            'import projects.van_lska as p, mim.utils as m; '
            'print(p.__file__); print(m.get_installed_path("van-lska"))',
        ],
        cwd=tmp_path,
        env=_pip_env(),
    ).stdout.split()
    site = Path(where[1]).parent
    assert Path(where[0]).is_relative_to(site), where
    assert (site / 'projects' / '.mim' / 'model-index.yml').is_file()
    assert (
        site / 'projects' / '.mim' / 'configs' / ('maskrcnn_van_lska_b1.py')
    ).is_file()
    try:
        out = run(
            [str(venv), '-m', 'mim', 'search', 'van-lska'],
            cwd=tmp_path,
            env=_pip_env(),
        )
        assert 'maskrcnn_van_lska_b1' in out.stdout
    finally:
        run([str(venv), '-m', 'pip', 'uninstall', '-y', 'van-lska'], tmp_path)


@pytest.mark.slow
def test_pep660_editable_install_is_refused_clearly(venv, source_copy):
    site = venv.parent.parent / 'lib'
    before = sorted(site.glob('python*/site-packages/*van_lska*'))
    out = run(
        [str(venv), '-m', 'pip', 'install', '--no-deps']
        + ['--no-build-isolation', '-e', str(source_copy)],
        cwd=source_copy,
        env=_pip_env(),
        check=False,
    )
    assert out.returncode != 0
    text = out.stdout + out.stderr
    assert 'is not supported' in text
    assert 'bash tools/install.sh' in text
    assert 'VAN_LSKA_EDITABLE_WITHOUT_MIM=1' in text
    # the refused build installed nothing into the venv
    assert sorted(site.glob('python*/site-packages/*van_lska*')) == before
