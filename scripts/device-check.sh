#!/usr/bin/env bash
# The GPU check in one command, for a machine with an NVIDIA GPU and PyTorch 2.x but no package
# archive and no network: build lmsweep (LMSWEEP_DEVICE_CHECK_ONLY) against that machine's torch,
# run the `cuda` tests, bench_train / bench_eval in fp32 and bf16 for the tiny ViT and ViT-B/16 at
# batch 8, and bench/reference_train_step.py on the same GPU; print lmsweep / Python.
#   bash scripts/device-check.sh --fetch-debs [DIR] [--with-cmake]   here (Debian 12, online):
#        apt-get download the .debs into DIR (device-check-debs/), with ../shared's tiny ViT and
#        BPE vocabulary; --with-cmake adds PyPI's cmake wheel (for a machine without cmake)
#   bash scripts/device-check.sh [--debs DIR] [--shared DIR]          there: unpack, build, run
# No GPU: says so and runs the same pipeline on the CPU with short settings.
# Output: everything in $OUT/device-check.log (else device-check-out/), JSON figures in
# benches.jsonl beside it. Environment: PYTHON (python3), BUILD_DIR (build-device-check).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PKGS=(libfmt-dev libfmt9 nlohmann-json3-dev libgtest-dev libicu-dev libicu72 libpng-dev libpng16-16 zlib1g-dev zlib1g)
die() { echo "device-check: error: $*" >&2; exit 1; }

mode=device debs=device-check-debs shared= with_cmake=0
while [ $# -gt 0 ]; do
  case "$1" in
    --fetch-debs) mode=fetch; if [ $# -gt 1 ] && [ "${2#--}" = "$2" ]; then debs=$2; shift; fi ;;
    --debs) debs=${2:?--debs DIR}; shift ;;
    --shared) shared=${2:?--shared DIR}; shift ;;
    --with-cmake) with_cmake=1 ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown option '$1' (see --help)" ;;
  esac
  shift
done
PY=${PYTHON:-python3}

if [ "$mode" = fetch ]; then
  mkdir -p "$debs" && debs=$(cd "$debs" && pwd)
  echo "==> apt-get download ${PKGS[*]} into $debs"
  (cd "$debs" && rm -f ./*.deb && apt-get download -q -o APT::Sandbox::User=root "${PKGS[@]}")
  if [ -d ../shared ]; then  # the device gets no ../shared: its tiny ViT and vocabulary travel here
    mkdir -p "$debs/shared/testdata/clip_vit_tiny" "$debs/shared/assets"
    cp ../shared/testdata/clip_vit_tiny/model.pt "$debs/shared/testdata/clip_vit_tiny/"
    cp ../shared/assets/bpe_simple_vocab_16e6.txt.gz "$debs/shared/assets/"
  fi
  if [ "$with_cmake" = 1 ]; then
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_17_x86_64 -d "$debs" cmake || die "pip download cmake failed"
  fi
  ls -l "$debs"/*.deb | awk '{printf "    %8.1f KiB  %s\n", $5 / 1024, $9}'
  total=$(cat "$debs"/*.deb | wc -c)
  echo "==> $(ls "$debs"/*.deb | wc -l) .debs, $((total / 1024)) KiB in all; whole folder $(du -sh "$debs" | cut -f1)"
  [ "$total" -le $((40 * 1024 * 1024)) ] || die ".debs over 40 MiB"
  exit 0
fi

OUTDIR=${OUT:-$ROOT/device-check-out}
mkdir -p "$OUTDIR"
LOG=$OUTDIR/device-check.log JSONL=$OUTDIR/benches.jsonl
: >"$JSONL"
exec > >(tee "$LOG") 2>&1
BUILD=${BUILD_DIR:-$ROOT/build-device-check}
mkdir -p "$BUILD" && BUILD=$(cd "$BUILD" && pwd)
since() { awk -v a="$1" -v b="$(date +%s%N)" 'BEGIN { printf "%.1f", (b - a) / 1e9 }'; }
started=$(date +%s%N)
STEPS=()
# step NAME CMD...: runs it timed and records how it ended; its figures' lines go to benches.jsonl.
step() {
  local name=$1 t0 rc=0 s status; shift
  echo "==> [$name] $*"
  t0=$(date +%s%N)
  { "$@" 2>&1 | tee "$BUILD/step.out"; } || rc=$?
  grep -E '^\{.*"bench":' "$BUILD/step.out" >>"$JSONL" || true
  s=$(since "$t0")
  status=ok; [ $rc = 0 ] || status="FAILED (exit $rc)"
  STEPS+=("$(printf '%-14s %7s s  %s' "$name" "$s" "$status")")
  echo "    [$name] $status in $s s"
  return $rc
}

# 1. The machine: torch, GPU, compilers, cmake.
info=$("$PY" -W ignore -c 'import torch
print(torch.__version__, torch.version.cuda or "none", int(torch.cuda.is_available()), torch.utils.cmake_prefix_path)') ||
  die "'$PY -c \"import torch\"' fails: set PYTHON to a python with torch"
read -r torch_v torch_cuda have_gpu torch_prefix <<<"$info"
gpu=none
[ "$have_gpu" = 1 ] && gpu=$("$PY" -c 'import torch; print(torch.cuda.get_device_name(0))')
echo "==> torch $torch_v (CUDA $torch_cuda) at $torch_prefix; GPU: $gpu; $(nproc) cores; $(uname -sr)"
DEV=cuda
if [ "$have_gpu" != 1 ]; then
  DEV=cpu
  echo "==> NO GPU visible: the cuda tests will skip and the benches run on the CPU with short settings"
fi

# 2. The carried .debs, unpacked into a prefix; absolute links (libz.so -> /lib/...) made relative to it.
[ -d "$debs" ] || die "no folder $debs: make it here with --fetch-debs, carry it, pass --debs DIR"
debs=$(cd "$debs" && pwd)
prefix=$BUILD/debs-prefix
unpack() {
  rm -rf "$prefix" && mkdir -p "$prefix"
  local f
  for f in "$debs"/*.deb; do
    if command -v dpkg >/dev/null; then dpkg -x "$f" "$prefix"; else (cd "$prefix" && ar p "$f" 'data.tar.xz' | tar -xJ); fi
  done
  find "$prefix" -type l -lname '/*' | while read -r l; do
    if [ -e "$prefix$(readlink "$l")" ]; then ln -sfn "$prefix$(readlink "$l")" "$l"; fi
  done
  ls "$debs"/*.deb | xargs -n1 basename | sed 's/_.*//' | tr '\n' ' '; echo
}
step unpack-debs unpack || die "unpacking $debs failed"
arch_dir=$(ls -d "$prefix"/usr/lib/*-linux-gnu | head -n1)
# Only these libraries at run time: Debian's libz must not shadow the machine's for python.
mkdir -p "$prefix/runtime" && ln -sf "$arch_dir"/lib{icu,fmt,png}*.so.* "$prefix/runtime/"
export LD_LIBRARY_PATH="$prefix/runtime${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

CMAKE=${CMAKE:-$(command -v cmake || true)}
if [ -z "$CMAKE" ] && [ -x "$(dirname "$(command -v "$PY")")/cmake" ]; then CMAKE=$(dirname "$(command -v "$PY")")/cmake; fi
if [ -z "$CMAKE" ] && ls "$debs"/cmake-*.whl >/dev/null 2>&1; then
  "$PY" -m zipfile -e "$(ls "$debs"/cmake-*.whl | head -n1)" "$prefix/cmake-wheel"
  CMAKE=$(ls "$prefix"/cmake-wheel/cmake/data/bin/cmake) && chmod +x "$(dirname "$CMAKE")"/*
fi
[ -n "$CMAKE" ] || die "no cmake on PATH nor beside $PY: rerun --fetch-debs with --with-cmake here"
CTEST=$(dirname "$CMAKE")/ctest
echo "==> $("$CMAKE" --version | head -n1) ($CMAKE); $(c++ --version | head -n1)"
cuda_args=()
if [ "$torch_cuda" != none ]; then
  nvcc=$(command -v nvcc || ls /usr/local/cuda/bin/nvcc 2>/dev/null || true)
  [ -n "$nvcc" ] || die "torch $torch_v's CMake config needs the CUDA $torch_cuda toolkit (nvcc): not found"
  cuda_root=$(cd "$(dirname "$nvcc")/.." && pwd)
  cuda_args=(-DCMAKE_CUDA_COMPILER="$nvcc" -DCUDAToolkit_ROOT="$cuda_root" -DCUDA_TOOLKIT_ROOT_DIR="$cuda_root")
fi
if [ -z "$shared" ]; then
  for d in "${LMSWEEP_SHARED_DIR:-}" ../shared "$debs/shared"; do [ -n "$d" ] && [ -d "$d" ] && { shared=$d; break; }; done
fi
[ -n "$shared" ] && shared=$(cd "$shared" && pwd) && export LMSWEEP_SHARED_DIR=$shared
echo "==> shared data: ${shared:-none (random tiny ViT, no Python reference)}"

# 3. Configure and build: the prefix before the system's folders. PyPI's libtorch.so exports its
# own std::filesystem (remove_all crashes through it: a null call): libstdc++ goes first.
stdcxx_first=-Wl,--push-state,--no-as-needed,-lstdc++,--pop-state
gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
[ -f "$BUILD/CMakeCache.txt" ] && ! grep -q "CMAKE_GENERATOR:INTERNAL=${gen[1]:-Unix Makefiles}$" "$BUILD/CMakeCache.txt" && rm -rf "$BUILD/CMakeCache.txt" "$BUILD/CMakeFiles"
step configure "$CMAKE" -S . -B "$BUILD" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DLMSWEEP_DEVICE_CHECK_ONLY=ON \
  -DCMAKE_PREFIX_PATH="$prefix/usr;$torch_prefix" -DCMAKE_INCLUDE_PATH="$prefix/usr/include" \
  -DCMAKE_LIBRARY_PATH="$arch_dir" -DICU_ROOT="$prefix/usr" -DZLIB_ROOT="$prefix/usr" -DPNG_ROOT="$prefix/usr" \
  -DLMSWEEP_SHARED_DIR="${shared:-$ROOT/../shared}" "${cuda_args[@]}" -DCMAKE_EXE_LINKER_FLAGS="$stdcxx_first" \
  ${LMSWEEP_CMAKE_ARGS:-} || die "configure failed"
grep -E '^(fmt_DIR|nlohmann_json_DIR|GTest_DIR|ICU_INCLUDE_DIR|ICU_UC_LIBRARY_RELEASE|PNG_LIBRARY_RELEASE|ZLIB_LIBRARY_RELEASE|LMSWEEP_WITH_OPENCV):' \
  "$BUILD/CMakeCache.txt" | sed "s|$prefix|<prefix>|; s/^/    /"
step build "$CMAKE" --build "$BUILD" -j "$(nproc)" || die "build failed"

# 4. The GPU tests.
step ctest-cuda "$CTEST" --test-dir "$BUILD" -L cuda --verbose --timeout 300 || true

# 5. The benchmarks: tiny ViT (the shared checkpoint, with the Python reference) and ViT-B/16.
threads=$(( $(nproc) < 8 ? $(nproc) : 8 ))
bpe=${shared:+$shared/assets/bpe_simple_vocab_16e6.txt.gz}
weights=${shared:+$shared/testdata/clip_vit_tiny/model.pt}
tiny=vit:res=32,patch=8,width=128,layers=2,embed=32,text-width=64,text-layers=2,vocab=$([ -n "$bpe" ] && echo 49408 || echo 514)
if [ "$DEV" = cuda ]; then
  train_short=(--epochs 2 --train-images 400 --test-images 50 --steps 30 --warmup 3 --python-steps 50)
  big_train=(--epochs 1 --train-images 200 --test-images 24 --steps 20 --warmup 3)
  eval_tiny=(--images 2048) eval_big=(--images 256 --repeats 2)
else
  train_short=(--classes 4 --epochs 1 --train-images 48 --test-images 8 --steps 3 --warmup 1 --python-steps 5)
  big_train=(--classes 4 --trainer 0 --train-images 16 --test-images 4 --steps 1 --warmup 1)
  eval_tiny=(--images 64) eval_big=(--images 8)
fi
B=$BUILD/bench
tiny_model=(--arch "$tiny"); [ -n "$weights" ] && tiny_model=(--weights "$weights")
T=(timeout 150)
step train-tiny "${T[@]}" "$B/bench_train" "${tiny_model[@]}" --bpe "${bpe:-}" --device "$DEV" --batch 8 \
  --threads "$threads" --python "$(command -v "$PY")" --variants fp32:auto,bf16:auto "${train_short[@]}" || true
step eval-tiny "${T[@]}" "$B/bench_eval" --arch "$tiny" --device "$DEV" --batch 8 --threads "$threads" \
  --precision fp32,bf16 ${bpe:+--bpe "$bpe"} "${eval_tiny[@]}" || true
step train-vitb16 "${T[@]}" "$B/bench_train" --arch ViT-B/16 --bpe "${bpe:-}" --device "$DEV" --batch 8 \
  --threads "$threads" --python none --variants fp32:auto,bf16:auto "${big_train[@]}" || true
step eval-vitb16 "${T[@]}" "$B/bench_eval" --arch ViT-B/16 --device "$DEV" --batch 8 --threads "$threads" \
  --precision fp32,bf16 ${bpe:+--bpe "$bpe"} "${eval_big[@]}" || true

# 6. Summary.
echo; echo "==> summary: torch $torch_v, GPU $gpu, device $DEV"
printf '    %s\n' "${STEPS[@]}"
"$PY" - "$JSONL" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
print("    %-21s %-26s %-20s %-8s %10s %9s" % ("bench", "model", "variant", "device", "images/s", "vs Python"))
for r in rows:
    variant = r.get("variant") or r.get("precision") or r.get("impl", "")
    if r["bench"] == "reference_train_step":
        variant = "python, torch " + r.get("torch", "?")
    model = str(r.get("model", "clip_vit_tiny" if r["bench"] == "reference_train_step" else ""))
    model = "clip_vit_tiny" if model.endswith("model.pt") else (model if len(model) < 26 else model[:23] + "...")
    ratio = r.get("speedup_vs_python")
    print("    %-21s %-26s %-20s %-8s %10.1f %9s" % (r["bench"], model, variant, r.get("device", ""),
          r.get("images_per_s", 0), "%.2fx" % ratio if ratio else ""))
ratios = [r["speedup_vs_python"] for r in rows if r.get("speedup_vs_python") and r["bench"] == "train_throughput"]
print("    lmsweep / Python (train_lmclip vs the reference step): " +
      ("%.2fx" % ratios[0] if ratios else "n/a (no Python reference figure)"))
EOF
echo "==> device-check: done in $(since "$started") s; log $LOG, figures $JSONL"
