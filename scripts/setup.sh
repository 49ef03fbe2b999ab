#!/usr/bin/env bash
# Installs lmsweep's build dependencies from Debian 12's archive and builds it into ./build.
#   bash scripts/setup.sh                   (as root, or with sudo available)
#   bash scripts/setup.sh --with-test-deps  also what the tests use: SLURM's daemons for the
#                                           private test cluster, the sqlite3 shell, chromium
#                                           (renders `report`'s page), Debian's python3-optuna,
#                                           and a venv with PyPI's optuna and tensorboard
#                                           ($LMSWEEP_TOOLS_VENV, default
#                                           ~/.cache/lmsweep/venv-tools) for the export tests
# Environment: BUILD_DIR (default build), BUILD_TYPE (Release), LMSWEEP_SKIP_APT=1 to skip apt,
# LMSWEEP_SKIP_BUILD=1 to only install the packages, LMSWEEP_EXTRA_PACKAGES="..." to install more
# (scripts/setup-cuda-libtorch.sh uses both).
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGES=(
  cmake g++ make pkg-config
  libtorch-dev libgloo-dev              # LibTorch 1.13 (CPU) with c10d and the Gloo headers
  libopenblas0-openmp                   # fast BLAS for LibTorch's CPU matmuls (reference BLAS is ~6x slower)
  libopenmpi-dev openmpi-bin            # MPI
  libboost-program-options-dev libsqlite3-dev libfmt-dev nlohmann-json3-dev
  libopencv-dev libicu-dev zlib1g-dev libpng-dev libgtest-dev
  libprotobuf-dev protobuf-compiler     # TensorBoard event files (our own .proto files)
  gnuplot-nox                           # `lmsweep report` draws its figures with it
)

if [ "${1:-}" = --with-test-deps ]; then
  PACKAGES+=(slurmctld slurmd slurm-client sqlite3 procps chromium python3-optuna python3-venv)
fi
# shellcheck disable=SC2206
PACKAGES+=(${LMSWEEP_EXTRA_PACKAGES:-})

if [ "${LMSWEEP_SKIP_APT:-0}" != 1 ]; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  missing=()
  for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "==> installing ${missing[*]}"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
  fi
fi

# PyPI's current optuna and tensorboard, in a venv of their own (Debian's python refuses pip
# installs into the system): the export tests read lmsweep's output with them, and skip without.
if [ "${1:-}" = --with-test-deps ] && [ "${LMSWEEP_SKIP_TOOLS_VENV:-0}" != 1 ]; then
  TOOLS_VENV=${LMSWEEP_TOOLS_VENV:-$HOME/.cache/lmsweep/venv-tools}
  if ! "$TOOLS_VENV/bin/python" -c 'import optuna, tensorboard' 2>/dev/null; then
    echo "==> pip install optuna tensorboard into $TOOLS_VENV"
    if python3 -m venv "$TOOLS_VENV" && "$TOOLS_VENV/bin/python" -m pip install -q --disable-pip-version-check \
         optuna tensorboard; then :; else
      echo "setup: warning: could not install optuna / tensorboard from PyPI into $TOOLS_VENV; their tests will skip" >&2
    fi
  fi
fi

if [ "${LMSWEEP_SKIP_BUILD:-0}" = 1 ]; then
  exit 0
fi

BUILD_DIR=${BUILD_DIR:-build}
echo "==> building into $BUILD_DIR"
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE="${BUILD_TYPE:-Release}" >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)"
