#!/usr/bin/env bash
# Install the VAN-LSKA suite and its OpenMMLab stack into the current Python.
#
#   bash tools/install.sh
#
# Environment:
#   PYTHON          the interpreter to install into (default: python3)
#   VAN_FIND_LINKS  extra folders of wheels for pip, separated by ':'
#                   (e.g. a prebuilt mmcv 2.1.0 wheel for your torch)
#   MAX_JOBS        parallel compile jobs for mmcv (default: nproc)
#
# What it does, skipping every step that is already satisfied (a second run
# takes seconds and changes nothing):
#   1. torch: uses the one you have; installs torch 2.14.1 + torchvision
#      0.29.1 when there is none.
#   2. mmcv 2.1.0 with compiled ops: a matching wheel if one is found and
#      works, else a source build against your torch (no build isolation, no
#      wheel cache, setuptools<82 + ninja, C++20 for torch >= 2.14, CUDA ops
#      when nvcc and a GPU are present).
#   3. mmengine, mmdet, mmsegmentation, mmpretrain, openmim and the packages
#      they import without declaring (requirements/runtime.txt), pytest.
#   4. this repository, editable, so `projects.van_lska` imports from any
#      folder (as `mim train mmdet CONFIG` needs).
#   5. checks that mmcv.ops, mmdet.models, mmseg.models, mmpretrain.models
#      and projects.van_lska import, and that mim runs.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
PIP_OPTS=(--disable-pip-version-check)
IFS=':' read -r -a _links <<< "${VAN_FIND_LINKS:-}"
for d in "${_links[@]}"; do
    [ -n "$d" ] && [ -d "$d" ] && PIP_OPTS+=(--find-links "$(cd "$d" && pwd)")
done

say() { printf '\033[1m[install]\033[0m %s\n' "$*"; }
die() {
    printf '\033[1;31m[install] FAILED:\033[0m %s\n' "$*" >&2
    exit 1
}
pip_install() { "$PY" -m pip install "${PIP_OPTS[@]}" "$@"; }

# True when every requirement in the given files is installed at a matching
# version (so pip, and its resolver, need not run at all).
satisfied() {
    "$PY" - "$@" <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, version
try:
    from packaging.requirements import Requirement
except ImportError:
    from pip._vendor.packaging.requirements import Requirement

def lines(path):
    for line in open(path):
        line = line.split('#')[0].strip()
        if line.startswith('-r '):
            yield from lines(line[3:].strip())
        elif line:
            yield line

for path in sys.argv[1:]:
    for line in lines(path):
        req = Requirement(line)
        try:
            if not req.specifier.contains(version(req.name),
                                          prereleases=True):
                sys.exit(1)
        except PackageNotFoundError:
            sys.exit(1)
EOF
}

cd "$REPO"
"$PY" -c 'import sys; assert sys.version_info >= (3, 9)' 2>/dev/null ||
    die "$PY is not Python >= 3.9 (set PYTHON=/path/to/python3.11)"
say "Python: $("$PY" -c 'import sys; print(sys.executable, sys.version.split()[0])')"

# ---------------------------------------------------------------- 1. torch
if "$PY" -c 'import torch' 2>/dev/null; then
    TORCH="$("$PY" -c 'import torch; print(torch.__version__)')"
    say "torch $TORCH already installed: using it"
    if ! "$PY" -c 'import torchvision' 2>/dev/null; then
        case "$TORCH" in
            2.14.1*) pip_install torchvision==0.29.1 ;;
            *) die "torchvision is missing (mmpretrain needs it): install \
the torchvision release built for torch $TORCH" ;;
        esac
    fi
else
    say "no torch found: installing requirements/torch.txt"
    pip_install -r requirements/torch.txt
fi
"$PY" -c 'import torch, torchvision' ||
    die "torch/torchvision do not import (see the error above)"

# ---------------------------------------------------- 2. mmcv with its ops
mmcv_ok() {
    (cd /tmp && "$PY" -c "import mmcv, mmcv.ops
assert mmcv.__version__ == '2.1.0', mmcv.__version__" >/dev/null 2>&1)
}

build_mmcv() {
    local tmp
    tmp="$(mktemp -d)"
    say "building mmcv 2.1.0 from source against torch $TORCH (about 30 \
minutes on 2 cores; MAX_JOBS=${MAX_JOBS:-$(nproc)})"
    "$PY" -m pip download "${PIP_OPTS[@]}" --no-deps --no-binary :all: \
        --no-build-isolation -d "$tmp" mmcv==2.1.0 ||
        die "could not download the mmcv 2.1.0 source from PyPI"
    tar -xzf "$tmp"/mmcv-2.1.0.tar.gz -C "$tmp"
    local src="$tmp/mmcv-2.1.0"
    local cuda=0
    if command -v nvcc >/dev/null && "$PY" -c \
        'import torch, sys; sys.exit(not torch.cuda.is_available())'; then
        cuda=1
    fi
    # torch >= 2.14's headers need C++20; mmcv 2.1.0 forces C++17.
    if "$PY" -c "import sys, torch
v = tuple(int(x) for x in torch.__version__.split('+')[0].split('.')[:2])
sys.exit(v < (2, 14))"; then
        sed -i "s/extra_compile_args\['cxx'\] = \['-std=c++17'\]/\
extra_compile_args['cxx'] = ['-std=c++20']/" "$src/setup.py"
        sed -i "s/extra_compile_args\['nvcc'\] += \['-std=c++17'\]/\
extra_compile_args['nvcc'] += ['-std=c++20']/" "$src/setup.py"
        grep -q -- "'-std=c++20'" "$src/setup.py" ||
            die "could not raise mmcv's C++ standard to C++20 in setup.py"
        say "raised mmcv's C++ standard to C++20 for torch $TORCH"
    fi
    [ "$cuda" = 1 ] && say "nvcc and a GPU found: building the CUDA ops too"
    MMCV_WITH_OPS=1 FORCE_CUDA="$cuda" MAX_JOBS="${MAX_JOBS:-$(nproc)}" \
        "$PY" -m pip install "${PIP_OPTS[@]}" --no-build-isolation \
        --no-cache-dir "$src" || die "building mmcv 2.1.0 failed (see above)"
    rm -rf "$tmp"
}

if mmcv_ok; then
    say "mmcv 2.1.0 with compiled ops already installed"
else
    satisfied requirements/build.txt || pip_install -r requirements/build.txt
    # A wheel that matches this Python and torch (e.g. from VAN_FIND_LINKS).
    # mmcv's wheels are not tagged with the torch they were built for, so a
    # wrong one fails at import with undefined symbols: test, then fall back.
    if pip_install --no-cache-dir --only-binary mmcv mmcv==2.1.0 \
        mmengine==0.10.7 2>/dev/null && mmcv_ok; then
        say "installed a prebuilt mmcv 2.1.0 wheel"
    else
        "$PY" -m pip uninstall -y mmcv >/dev/null 2>&1 || true
        build_mmcv
    fi
    mmcv_ok || die "mmcv 2.1.0 is installed but 'import mmcv.ops' fails: \
it was built for another torch; run 'pip uninstall mmcv' and this script again"
fi

# ------------------------------------------- 3. the OpenMMLab stack, pytest
if satisfied requirements/runtime.txt requirements/tests.txt; then
    say "mmengine, mmdet, mmseg, mmpretrain, openmim, pytest: up to date"
else
    say "installing requirements/runtime.txt and requirements/tests.txt"
    pip_install -r requirements/runtime.txt -r requirements/tests.txt
fi

# ------------------------------------------ 4. this project, editable
# mim finds our model zoo through the distribution's location (the repo, in
# a develop install) + its top-level package + '/.mim'.
LOCATION="$(cd /tmp && "$PY" -c "import importlib.metadata as m
try:
    d = m.distribution('van-lska')
    p = d.read_text('top_level.txt') and d.locate_file('')
    print(p)
except m.PackageNotFoundError:
    pass" 2>/dev/null || true)"
if [ "$LOCATION" -ef "$REPO" ]; then
    say "van-lska already installed in editable mode from $REPO"
else
    say "installing this repository in editable mode"
    pip_install --no-build-isolation --no-deps --no-use-pep517 -e "$REPO" ||
        die "the editable install of $REPO failed"
fi

# --------------------------------------------------------------- 5. checks
say "checking the result"
failed=()
for mod in mmcv.ops mmdet.models mmseg.models mmpretrain.models \
    projects.van_lska; do
    if out="$(cd /tmp && "$PY" -c "import $mod" 2>&1)"; then
        say "  ok: import $mod"
    else
        printf '[install]   FAILED: import %s\n%s\n' "$mod" \
            "$(echo "$out" | tail -n 3)" >&2
        failed+=("import $mod")
    fi
done
if (cd /tmp && "$PY" -m mim --version >/dev/null 2>&1 ||
    "$PY" -c 'import mim' >/dev/null 2>&1) && command -v mim >/dev/null; then
    say "  ok: mim"
else
    failed+=("mim (openmim)")
fi
if [ "${#failed[@]}" -gt 0 ]; then
    die "these checks failed: ${failed[*]}"
fi
say "done: the VAN-LSKA suite is installed (run the tests with: \
python -m pytest tests)"
