#!/usr/bin/env bash
# Install the VAN-LSKA suite and its OpenMMLab stack into the current Python.
#
#   bash tools/install.sh            the suite (mmdet, mmseg, mmpretrain)
#   bash tools/install.sh --yolo     also Ultralytics (AGPL-3.0, optional:
#                                    requirements/yolo.txt) for LSKA in YOLO11
#
# Environment:
#   PYTHON          the interpreter to install into (default: python3; an
#                   activated virtual environment's python3 is used as is)
#   VAN_FIND_LINKS  extra folders of wheels for pip, separated by ':' (e.g.
#                   one holding a mmcv 2.1.0 wheel built for your torch);
#                   pip's own PIP_FIND_LINKS is honoured too
#   MAX_JOBS        parallel compile jobs for a mmcv source build (nproc)
#
# Steps, each skipped when already satisfied (a second run changes nothing
# and takes seconds):
#   1. pip and the build tools (requirements/build.txt: setuptools>=64,<80,
#      wheel, ninja).
#   2. torch: the one you have is used; torch 2.14.1 + torchvision 0.29.1
#      (requirements/torch.txt) are installed only when there is none.
#   3. mmengine, mmdet, mmsegmentation, mmpretrain, openmim and what they
#      import without declaring (requirements/runtime.txt), and pytest.
#   4. mmcv 2.1.0 with its compiled ops: a prebuilt wheel if one is found and
#      imports with this torch, else a source build against this torch (no
#      build isolation, no wheel cache, C++20 for torch >= 2.14, CUDA ops when
#      nvcc and a GPU are present).
#   5. this repository, editable (`setup.py develop`): `projects.van_lska`
#      imports from any folder and `mim` finds projects/.mim.
#   6. checks: pip check, `import mmcv.ops, mmdet.models, mmseg.models,
#      mmpretrain.models, projects.van_lska` from another folder, mim.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WITH_YOLO=0
for arg in "$@"; do
    case "$arg" in
        --yolo) WITH_YOLO=1 ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) printf 'install.sh: unknown option %s (allowed: --yolo, --help)\n' \
               "$arg" >&2; exit 2 ;;
    esac
done
PY="${PYTHON:-python3}"
START=$SECONDS
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1

say() { printf '\033[1m[install]\033[0m %s\n' "$*"; }
warn() { printf '\033[1;33m[install] warning:\033[0m %s\n' "$*" >&2; }
die() {
    printf '\033[1;31m[install] FAILED (step: %s):\033[0m %s\n' \
        "${STEP:-setup}" "$*" >&2
    exit 1
}

# --------------------------------------------------------------- preflight
STEP=python
command -v "$PY" >/dev/null || die "no '$PY' found: install Python 3.11 \
(or set PYTHON=/path/to/python3.11)"
"$PY" -c 'import sys; sys.exit(sys.version_info < (3, 9))' ||
    die "$PY is Python $("$PY" -V 2>&1); this suite needs >= 3.9 (3.11 is \
tested): set PYTHON=/path/to/python3.11"
say "Python: $("$PY" -c 'import sys; print(sys.executable, sys.version.split()[0])')"
"$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' ||
    warn "tested with Python 3.11 only"
if ! "$PY" -m pip --version >/dev/null 2>&1; then
    say "pip is missing: trying ensurepip"
    "$PY" -m ensurepip --upgrade >/dev/null 2>&1 ||
        die "$PY has no pip (on Debian/Ubuntu: apt install python3.11-venv, \
then create a virtual environment, see README)"
fi
# A distribution's own Python (PEP 668) refuses pip installs outside a venv.
if "$PY" - <<'EOF'
import os, sys, sysconfig
managed = os.path.exists(
    os.path.join(sysconfig.get_path('stdlib'), 'EXTERNALLY-MANAGED'))
in_venv = sys.prefix != sys.base_prefix
sys.exit(0 if managed and not in_venv
         and not os.environ.get('PIP_BREAK_SYSTEM_PACKAGES') else 1)
EOF
then
    die "$PY is managed by the system package manager: create a virtual \
environment first (python3.11 -m venv ~/venvs/van-lska && \
. ~/venvs/van-lska/bin/activate), then run this script again"
fi

PIP_OPTS=()
IFS=':' read -r -a _links <<< "${VAN_FIND_LINKS:-}"
for d in "${_links[@]}"; do
    if [ -n "$d" ] && [ -d "$d" ]; then
        PIP_OPTS+=(--find-links "$(cd "$d" && pwd)")
        say "extra wheel folder: $(cd "$d" && pwd)"
    elif [ -n "$d" ]; then
        warn "VAN_FIND_LINKS entry '$d' is not a folder: ignored"
    fi
done
pip_install() { "$PY" -m pip install "${PIP_OPTS[@]}" "$@"; }

# Succeeds when every requirement in the given files (following -r) is
# installed at a matching version, so that pip and its resolver need not run.
satisfied() {
    "$PY" - "$@" <<'EOF'
import os, sys
from importlib.metadata import PackageNotFoundError, version
try:
    from packaging.requirements import Requirement
except ImportError:
    from pip._vendor.packaging.requirements import Requirement

def lines(path):
    for line in open(path):
        line = line.split('#')[0].strip()
        if line.startswith('-r '):
            yield from lines(os.path.join(os.path.dirname(path),
                                          line[3:].strip()))
        elif line:
            yield line

for path in sys.argv[1:]:
    for line in lines(path):
        req = Requirement(line)
        if req.marker is not None and not req.marker.evaluate():
            continue
        try:
            ok = req.specifier.contains(version(req.name), prereleases=True)
        except PackageNotFoundError:
            ok = False
        if not ok:
            sys.exit(1)
EOF
}

# Pins the installed torch, torchvision and mmcv, so that no later pip run
# replaces them with other builds.
CONSTRAINTS="$(mktemp)"
trap 'rm -f "$CONSTRAINTS"' EXIT
pin_installed() {
    "$PY" - > "$CONSTRAINTS" <<'EOF'
from importlib.metadata import PackageNotFoundError, version
for name in ('torch', 'torchvision', 'mmcv'):
    try:
        print(f'{name}=={version(name)}')
    except PackageNotFoundError:
        pass
EOF
}

cd "$REPO"

# ------------------------------------------------------ 1. build tools
STEP="build tools"
if satisfied requirements/build.txt; then
    say "setuptools, wheel, ninja: up to date"
else
    say "installing requirements/build.txt (setuptools>=64,<80, wheel, ninja)"
    pip_install -r requirements/build.txt || die "pip could not install \
requirements/build.txt (see above)"
fi

# -------------------------------------------------------------- 2. torch
STEP=torch
if "$PY" -c 'import torch' 2>/dev/null; then
    TORCH="$("$PY" -c 'import torch; print(torch.__version__)')"
    say "torch $TORCH already installed: using it"
    if ! "$PY" -c 'import torchvision' 2>/dev/null; then
        case "$TORCH" in
            2.14.1*) pip_install torchvision==0.29.1 ;;
            *) die "torchvision is missing (mmpretrain imports it): install \
the torchvision release made for torch $TORCH" ;;
        esac
    fi
else
    say "no torch found: installing requirements/torch.txt \
(torch 2.14.1, torchvision 0.29.1)"
    pip_install -r requirements/torch.txt -r requirements/build.txt ||
        die "pip could not install torch 2.14.1 and torchvision 0.29.1"
fi
out="$("$PY" -c 'import torch, torchvision; print(torch.__version__)' 2>&1)" ||
    die "torch/torchvision do not import together: $(tail -n 2 <<< "$out")"
TORCH="$out"

# ------------------------------------- 3. the OpenMMLab stack and pytest
STEP="OpenMMLab stack"
if satisfied requirements/runtime.txt requirements/tests.txt; then
    say "mmengine, mmdet, mmsegmentation, mmpretrain, openmim, pytest: \
up to date"
else
    say "installing requirements/runtime.txt and requirements/tests.txt"
    pin_installed
    pip_install -r requirements/runtime.txt -r requirements/tests.txt \
        -r requirements/build.txt -c "$CONSTRAINTS" ||
        die "pip could not install requirements/runtime.txt (see above)"
fi
# opendatalab 0.0.10 pulled openxlab, which pins setuptools~=60.2,
# requests~=2.28 and rich~=13.4; nothing here needs it any more.
if "$PY" - <<'EOF'
import sys
from importlib.metadata import PackageNotFoundError, distributions, version
try:
    version('openxlab')
except PackageNotFoundError:
    sys.exit(1)
for dist in distributions():
    for req in dist.requires or []:
        if req.split(';')[0].strip().lower().startswith('openxlab'):
            sys.exit(1)  # still wanted by something: keep it
EOF
then
    say "removing openxlab (left over from opendatalab 0.0.10; it pins \
setuptools~=60.2, which torch and mmcv's build cannot use)"
    "$PY" -m pip uninstall -y openxlab >/dev/null
fi

# ------------------------------------- 3b. optional: Ultralytics (--yolo)
if [ "$WITH_YOLO" = 1 ]; then
    STEP="Ultralytics (--yolo)"
    if satisfied requirements/yolo.txt; then
        say "ultralytics: up to date"
    else
        say "installing requirements/yolo.txt (Ultralytics, AGPL-3.0)"
        pin_installed
        pip_install -r requirements/yolo.txt -r requirements/runtime.txt \
            -c "$CONSTRAINTS" ||
            die "pip could not install requirements/yolo.txt (see above)"
    fi
fi

# ------------------------------------------------- 4. mmcv with its ops
STEP=mmcv
MMCV_ERR=""
mmcv_ok() {
    MMCV_ERR="$(cd /tmp && "$PY" -c "import mmcv, mmcv.ops
assert mmcv.__version__ == '2.1.0', 'mmcv ' + mmcv.__version__" 2>&1)"
}

build_mmcv() {
    local tmp src cuda=0 jobs="${MAX_JOBS:-$(nproc)}"
    tmp="$(mktemp -d)"
    "$PY" -m pip download "${PIP_OPTS[@]}" --no-deps --no-binary :all: \
        --no-build-isolation -d "$tmp" mmcv==2.1.0 >/dev/null ||
        die "could not download the mmcv 2.1.0 source (sdist) from PyPI"
    tar -xzf "$tmp"/mmcv-2.1.0.tar.gz -C "$tmp"
    src="$tmp/mmcv-2.1.0"
    # torch >= 2.14's headers need C++20; mmcv 2.1.0 forces C++17.
    if "$PY" - <<'EOF'
import sys, torch
v = tuple(int(x) for x in torch.__version__.split('+')[0].split('.')[:2])
sys.exit(v < (2, 14))
EOF
    then
        sed -i \
            -e "s/extra_compile_args\['cxx'\] = \['-std=c++17'\]/extra_compile_args['cxx'] = ['-std=c++20']/" \
            -e "s/extra_compile_args\['nvcc'\] += \['-std=c++17'\]/extra_compile_args['nvcc'] += ['-std=c++20']/" \
            "$src/setup.py"
        grep -q -- "extra_compile_args\['cxx'\] = \['-std=c++20'\]" \
            "$src/setup.py" ||
            die "could not raise mmcv's C++ standard to C++20 in setup.py"
        say "raised mmcv's C++ standard from C++17 to C++20 (torch $TORCH)"
    fi
    # mmcv builds CUDA ops whenever torch sees a GPU: only let it when nvcc
    # is there too, else hide the GPU and build the CPU ops.
    local gpu=0
    "$PY" -c 'import sys, torch; sys.exit(not torch.cuda.is_available())' \
        2>/dev/null && gpu=1
    if [ "$gpu" = 1 ] && command -v nvcc >/dev/null; then
        cuda=1
        say "nvcc and a GPU found: building the CUDA ops too"
    elif [ "$gpu" = 1 ]; then
        warn "a GPU but no nvcc (CUDA toolkit): building CPU ops only"
    fi
    say "building mmcv 2.1.0 with ops against torch $TORCH with $jobs jobs \
(about 30 minutes on 2 cores)"
    if [ "$cuda" = 1 ]; then
        MMCV_WITH_OPS=1 FORCE_CUDA=1 MAX_JOBS="$jobs" \
            "$PY" -m pip install "${PIP_OPTS[@]}" --no-deps \
            --no-build-isolation --no-cache-dir "$src"
    else
        MMCV_WITH_OPS=1 FORCE_CUDA=0 CUDA_VISIBLE_DEVICES="" \
            MAX_JOBS="$jobs" "$PY" -m pip install "${PIP_OPTS[@]}" \
            --no-deps --no-build-isolation --no-cache-dir "$src"
    fi || die "building mmcv 2.1.0 from source failed (see the compiler \
output above)"
    rm -rf "$tmp"
}

if mmcv_ok; then
    say "mmcv 2.1.0 with compiled ops: already installed and working"
else
    if "$PY" -m pip show -q mmcv >/dev/null 2>&1; then
        say "the installed mmcv does not work here ($(tail -n 1 \
<<< "$MMCV_ERR")): replacing it"
        "$PY" -m pip uninstall -y mmcv >/dev/null
    fi
    # A prebuilt wheel (e.g. from VAN_FIND_LINKS). mmcv's wheels do not say
    # which torch they were built for: a wrong one fails at import with
    # undefined symbols, so test it and fall back to a source build.
    if pip_install --no-deps --no-cache-dir --only-binary=:all: \
        mmcv==2.1.0 >/dev/null 2>&1; then
        if mmcv_ok; then
            say "installed a prebuilt mmcv 2.1.0 wheel; it works with \
torch $TORCH"
        else
            say "the prebuilt mmcv 2.1.0 wheel does not work with torch \
$TORCH ($(tail -n 1 <<< "$MMCV_ERR")): removing it, building from source"
            "$PY" -m pip uninstall -y mmcv >/dev/null
        fi
    else
        say "no prebuilt mmcv 2.1.0 wheel for this Python/platform"
    fi
    if ! mmcv_ok; then
        build_mmcv
        mmcv_ok || die "mmcv 2.1.0 was built but 'import mmcv.ops' fails: \
$(tail -n 3 <<< "$MMCV_ERR")"
    fi
fi

# ------------------------------------------ 5. this project, editable
STEP="editable install"
# Links mim needs, tracked in git; recreated if a checkout lost them.
for name in configs tools model-index.yml; do
    if [ "$(readlink "projects/.mim/$name" 2>/dev/null)" != "../../$name" ]
    then
        mkdir -p projects/.mim
        rm -rf "projects/.mim/$name"
        ln -s "../../$name" "projects/.mim/$name"
    fi
done
# `setup.py develop` (legacy editable install) records the repository as the
# distribution's location; mim looks for <location>/projects/.mim there.
installed_here() {
    (cd /tmp && "$PY" - "$REPO" <<'EOF'
import os, re, sys
import importlib.metadata as md
repo = sys.argv[1]
try:
    dist = md.distribution('van-lska')
except md.PackageNotFoundError:
    sys.exit(1)
init = open(os.path.join(repo, 'projects', 'van_lska', '__init__.py')).read()
want = re.search(r"__version__ = '([^']+)'", init).group(1)
here = os.path.realpath(str(dist.locate_file(''))) == os.path.realpath(repo)
sys.exit(0 if here and dist.version == want else 1)
EOF
    ) 2>/dev/null
}
if installed_here; then
    say "van-lska already installed in editable mode from $REPO"
else
    if "$PY" -m pip show -q van-lska >/dev/null 2>&1; then
        say "removing another install of van-lska"
        (cd /tmp && "$PY" -m pip uninstall -y van-lska >/dev/null)
    fi
    say "installing this repository in editable mode (setup.py develop)"
    log="$(mktemp)"
    "$PY" setup.py develop --no-deps >"$log" 2>&1 || {
        tail -n 20 "$log" >&2
        die "the editable install of $REPO failed"
    }
    rm -f "$log"
    installed_here || die "after the editable install, van-lska is not \
found at $REPO (is setuptools < 80?)"
fi

# --------------------------------------------------------------- 6. checks
STEP=checks
say "checking the result"
failed=()
# Conflicts that involve this stack fail the install; others are reported.
if ! out="$("$PY" -m pip check 2>&1)"; then
    ours='^(torch|torchvision|mmcv|mmengine|mmdet|mmsegmentation|mmpretrain|openmim|opendatalab|setuptools|van-lska) '
    while IFS= read -r line; do
        [ -z "$line" ] && continue
        if grep -Eiq "$ours" <<< "$line"; then
            printf '[install]   FAILED: pip check: %s\n' "$line" >&2
            failed+=("pip check")
        else
            warn "pip check (not this suite's packages): $line"
        fi
    done <<< "$out"
fi
# One interpreter, started in another folder, so that only the editable
# install can make projects.van_lska importable.
if out="$(cd /tmp && "$PY" - 2>&1 <<'EOF'
import importlib, sys, traceback, warnings
warnings.simplefilter('ignore')
bad = 0
for name in ('mmcv.ops', 'mmdet.models', 'mmseg.models',
             'mmpretrain.models', 'projects.van_lska'):
    try:
        importlib.import_module(name)
        print(f'ok: import {name}')
    except Exception as exc:  # report every failure, not just the first
        bad += 1
        line = traceback.format_exception_only(type(exc), exc)[-1].strip()
        print(f'FAILED: import {name}: {line}')
if not bad:
    from mmdet.registry import MODELS as DET
    from mmpretrain.registry import MODELS as CLS
    from mmseg.registry import MODELS as SEG
    for reg in (CLS, DET, SEG):
        for name in ('VAN_LKA', 'VAN_LSKA'):
            if reg.get(name) is None:
                bad += 1
                print(f'FAILED: {name} is not in {reg.scope} MODELS')
    if not bad:
        print('ok: VAN_LKA and VAN_LSKA registered in mmpretrain, mmdet '
              'and mmseg')
try:
    from mim.utils import get_installed_path
    print(f'mim finds van-lska at {get_installed_path("van-lska")}')
except Exception as exc:
    bad += 1
    print(f'FAILED: mim cannot locate van-lska: {exc}')
sys.exit(bad)
EOF
)"; then
    while IFS= read -r line; do say "  $line"; done <<< "$out"
else
    while IFS= read -r line; do
        case "$line" in
            ok:*|mim*) say "  $line" ;;
            *) printf '[install]   %s\n' "$line" >&2 ;;
        esac
    done <<< "$out"
    failed+=("imports")
fi
if [ "$(cd /tmp && "$PY" -c 'from mim.utils import get_installed_path
print(get_installed_path("van-lska"))' 2>/dev/null)" != "$REPO/projects" ]
then
    failed+=("mim does not locate van-lska at $REPO/projects")
fi
if out="$(cd /tmp && "$PY" -m mim --version 2>&1)"; then
    say "  ok: $out"
else
    printf '[install]   FAILED: python -m mim: %s\n' "$(tail -n 1 \
<<< "$out")" >&2
    failed+=("mim")
fi
if [ -f model-index.yml ]; then
    if (cd /tmp && "$PY" -m mim search van-lska >/dev/null 2>&1); then
        say "  ok: mim search van-lska"
    else
        failed+=("mim search van-lska")
    fi
fi
MIM_BIN="$(dirname "$("$PY" -c 'import sys; print(sys.executable)')")/mim"
if ! command -v mim >/dev/null; then
    warn "the 'mim' command is not on PATH: add $(dirname "$MIM_BIN") to \
PATH (or activate the virtual environment)"
fi
if [ "${#failed[@]}" -gt 0 ]; then
    die "these checks failed: ${failed[*]}"
fi
say "done in $((SECONDS - START)) s: the VAN-LSKA suite is installed \
(torch $TORCH, mmcv 2.1.0). Run the tests with: python -m pytest tests -n 2 --dist loadfile"
