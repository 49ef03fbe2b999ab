#!/usr/bin/env bash
# The cluster build: lmsweep against PyPI's CUDA torch 2.x (its LibTorch, CUDA, NCCL), as the
# README's "Running on a SLURM cluster" tells, into ./build-cuda. The Debian build (build/) is
# untouched.
#   bash scripts/setup-cuda-libtorch.sh                   install, build
#   bash scripts/setup-cuda-libtorch.sh --test [ARGS...]  also run the whole ctest suite on that
#                                                         build (ARGS go to ctest), with the
#                                                         tests' packages (--with-test-deps)
#   bash scripts/setup-cuda-libtorch.sh --with-test-deps  install the tests' packages, build
# Steps: Debian's build dependencies exactly as scripts/setup.sh installs them (plus python3-venv);
# a venv with torch==$TORCH_VERSION from PyPI (reused when it already has that torch; the
# downloaded wheels are kept, so a new venv downloads nothing); configure with
# -DCMAKE_PREFIX_PATH=$(python -c 'import torch; print(torch.utils.cmake_prefix_path)'); build.
# It needs the CUDA toolkit (nvcc, cuBLAS, ... headers) that torch's CMake config asks for, of
# torch's CUDA major version; a GPU is not needed to build or to run the tests.
# Environment:
#   TORCH_VERSION        torch from PyPI (2.11.0: CUDA 13.0)
#   LMSWEEP_TORCH_VENV   the venv ($HOME/.cache/lmsweep/venv-torch-$TORCH_VERSION)
#   LMSWEEP_WHEELS       where downloaded wheels are kept ($HOME/.cache/lmsweep/wheels-torch-$TORCH_VERSION)
#   LMSWEEP_PYTHON       the python that creates it (python3)
#   BUILD_DIR, BUILD_TYPE  build-cuda, Release
#   CUDA_HOME            the CUDA toolkit when nvcc is not on PATH (else /usr/local/cuda)
#   TORCH_CUDA_ARCH_LIST 9.0 (lmsweep compiles no CUDA code; it only quiets torch's config)
#   LMSWEEP_WITH_NCCL    ON (configure fails without NCCL); AUTO or OFF
#   LMSWEEP_SKIP_APT=1   skip apt; PIP_CACHE_DIR, PIP_INDEX_URL: pip's own
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "setup-cuda-libtorch: error: $*" >&2; exit 1; }

run_tests=0
test_deps=()
ctest_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --test) run_tests=1; test_deps=(--with-test-deps); shift; ctest_args=("$@"); break ;;
    --with-test-deps) test_deps=(--with-test-deps); shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
done

TORCH_VERSION=${TORCH_VERSION:-2.11.0}
VENV=${LMSWEEP_TORCH_VENV:-$HOME/.cache/lmsweep/venv-torch-$TORCH_VERSION}
WHEELS=${LMSWEEP_WHEELS:-$HOME/.cache/lmsweep/wheels-torch-$TORCH_VERSION}
PY=${LMSWEEP_PYTHON:-python3}
BUILD_DIR=${BUILD_DIR:-build-cuda}
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
started=$(date +%s)

# 1. Debian's packages: scripts/setup.sh's list (the same libraries as the Debian build), and a
#    python with venv for pip's torch.
LMSWEEP_SKIP_BUILD=1 LMSWEEP_EXTRA_PACKAGES="python3 python3-venv ${LMSWEEP_EXTRA_PACKAGES:-}" \
  bash scripts/setup.sh "${test_deps[@]}"

command -v "$PY" >/dev/null 2>&1 || die "no '$PY' to create the torch venv: apt-get install python3 python3-venv (or set LMSWEEP_PYTHON)"
"$PY" -c 'import venv, ensurepip' 2>/dev/null ||
  die "'$PY' cannot create a venv with pip (no venv/ensurepip module): apt-get install python3-venv (or set LMSWEEP_PYTHON)"

# 2. torch from PyPI in its own venv.
torch_in_venv() {
  [ -x "$VENV/bin/python" ] &&
    "$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("torch"))' 2>/dev/null
}
have=$(torch_in_venv || true)
if [ "${have%%+*}" = "$TORCH_VERSION" ]; then
  echo "==> reusing torch $have in $VENV"
else
  if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating the venv $VENV"
    mkdir -p "$(dirname "$VENV")"
    "$PY" -m venv --clear "$VENV" || die "'$PY -m venv $VENV' failed: apt-get install python3-venv (or set LMSWEEP_PYTHON)"
  fi
  # What pip downloads is kept as wheels (pip's HTTP cache is not enough behind proxies that
  # strip caching headers): a new venv installs from them without downloading anything.
  pip=("$VENV/bin/python" -m pip --disable-pip-version-check)
  mkdir -p "$WHEELS"
  if ! "${pip[@]}" install -q --no-index --find-links "$WHEELS" "torch==$TORCH_VERSION" 2>/dev/null; then
    echo "==> pip download torch==$TORCH_VERSION and its dependencies into $WHEELS"
    "${pip[@]}" download -q --progress-bar off -d "$WHEELS" "torch==$TORCH_VERSION" ||
      die "pip download torch==$TORCH_VERSION failed (PyPI unreachable, or no such version for this python)"
    echo "==> pip install torch==$TORCH_VERSION into $VENV from $WHEELS"
    "${pip[@]}" install -q --no-index --find-links "$WHEELS" "torch==$TORCH_VERSION" ||
      die "pip install torch==$TORCH_VERSION from $WHEELS failed"
  else
    echo "==> installed torch==$TORCH_VERSION into $VENV from the kept wheels in $WHEELS"
  fi
  have=$(torch_in_venv) || die "torch is not importable from $VENV after pip install"
fi
# Everything about the torch found, without its NumPy warning.
torch_info=$("$VENV/bin/python" -W ignore -c '
import torch
print(torch.__version__, torch.version.cuda or "none", int(torch.compiled_with_cxx11_abi()))' 2>/dev/null) ||
  die "'import torch' fails in $VENV: remove the venv and rerun"
read -r torch_full torch_cuda torch_abi <<<"$torch_info"
[ "$torch_cuda" != none ] || die "torch $torch_full in $VENV is a CPU build: the cluster build needs PyPI's CUDA torch"

# 3. The CUDA toolkit torch's CMake config enables (nvcc may not be on PATH in CI): CUDA_HOME or
#    CUDA_PATH when set, else the toolkit of the nvcc on PATH (asked: it may be a wrapper script
#    in /usr/local/bin), else /usr/local/cuda.
is_toolkit() { [ -n "$1" ] && [ -x "$1/bin/nvcc" ] && [ -e "$1/include/cuda_runtime_api.h" ]; }
cuda_root=""
for root in "${CUDA_HOME:-}" "${CUDA_PATH:-}"; do
  if is_toolkit "$root"; then cuda_root=$root; break; fi
done
if [ -z "$cuda_root" ] && command -v nvcc >/dev/null 2>&1; then
  : >"${TMPDIR:-/tmp}/lmsweep-nvcc-probe.cu"
  here=$(cd "${TMPDIR:-/tmp}" && nvcc -dryrun -c lmsweep-nvcc-probe.cu 2>&1 | sed -n 's/^#\$ _HERE_=//p' | head -n 1)
  rm -f "${TMPDIR:-/tmp}/lmsweep-nvcc-probe.cu"
  if is_toolkit "${here%/bin}"; then cuda_root=${here%/bin}; fi
fi
for root in /usr/local/cuda "/usr/local/cuda-$torch_cuda"; do
  if [ -z "$cuda_root" ] && is_toolkit "$root"; then cuda_root=$root; fi
done
[ -n "$cuda_root" ] || die "torch $torch_full's CMake config needs the CUDA $torch_cuda toolkit (nvcc and its headers), found neither in CUDA_HOME, on PATH nor in /usr/local/cuda: install it (NVIDIA's cuda-toolkit-${torch_cuda/./-}) or set CUDA_HOME"
cuda_root=$(cd "$cuda_root" && pwd -P)
nvcc=$cuda_root/bin/nvcc
export PATH="$cuda_root/bin:$PATH"
toolkit=$("$nvcc" --version | sed -n 's/.*release \([0-9][0-9]*\.[0-9][0-9]*\).*/\1/p')
if [ "${toolkit%%.*}" != "${torch_cuda%%.*}" ]; then
  echo "setup-cuda-libtorch: warning: the CUDA toolkit at $cuda_root is $toolkit, torch $torch_full is built for CUDA $torch_cuda" >&2
fi

# 4. Configure and build, as the README tells cluster users.
prefix=$("$VENV/bin/python" -W ignore -c 'import torch; print(torch.utils.cmake_prefix_path)' 2>/dev/null)
echo "==> configuring $BUILD_DIR against torch $torch_full (CUDA $torch_cuda; the CUDA $toolkit toolkit in $cuda_root)"
mkdir -p "$BUILD_DIR"
if ! cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}" \
     -DCMAKE_PREFIX_PATH="$prefix" \
     -DCMAKE_CUDA_COMPILER="$nvcc" -DCUDAToolkit_ROOT="$cuda_root" -DCUDA_TOOLKIT_ROOT_DIR="$cuda_root" \
     -DLMSWEEP_WITH_NCCL="${LMSWEEP_WITH_NCCL:-ON}" >"$BUILD_DIR/configure.log" 2>&1; then
  tail -n 40 "$BUILD_DIR/configure.log" >&2
  die "configuring $BUILD_DIR failed (the whole output: $BUILD_DIR/configure.log)"
fi
grep -E '^-- lmsweep:' "$BUILD_DIR/configure.log" || true
grep -q 'CMake Warning' "$BUILD_DIR/configure.log" &&
  echo "    (configure warnings: $BUILD_DIR/configure.log)"
echo "==> building into $BUILD_DIR"
build_started=$(date +%s)
cmake --build "$BUILD_DIR" -j "$(nproc)" || die "building $BUILD_DIR failed (the compiler's messages are above)"
build_s=$(( $(date +%s) - build_started ))

# 5. What it built, from the binary itself (this also checks that it loads).
version=$("$BUILD_DIR/lmsweep" --version 2>/dev/null) ||
  die "$BUILD_DIR/lmsweep --version fails: $("$BUILD_DIR/lmsweep" --version 2>&1 | head -n 3 | tr '\n' ' ')"
line() { grep -m1 "^$1 " <<<"$version" | cut -d' ' -f2-; }
echo "==> built $BUILD_DIR/lmsweep in ${build_s} s: torch $torch_full from PyPI (C++11 ABI $torch_abi), LibTorch $(line LibTorch), CUDA $(line CUDA), NCCL $(line NCCL), Gloo $(line Gloo), MPI $(line MPI)"

# 6. The whole suite on that build, in the environment of scripts/test.sh.
if [ "$run_tests" = 1 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)" "${ctest_args[@]}"
fi
echo "==> setup-cuda-libtorch: done in $(( $(date +%s) - started )) s"
