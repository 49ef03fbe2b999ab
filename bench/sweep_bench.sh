#!/usr/bin/env bash
# Sweep benchmarks (issue 4), printing one JSON object per figure:
#  1. the coordinator's cost per trial: dispatch and bookkeeping (assign, one epoch record with
#     per-class AP, completion: three SQLite transactions) with trivial trials (fake, 0 s) on 8
#     ranks, from the first trial's start to the last one's end in the database;
#  2. sweep throughput on the synthetic data: trials and training images per second of a real
#     sweep of a small CLIP;
#  3. trials per device (issue 12): the same 4-point grid with trials_per_device = 1 (one rank,
#     all cores) and = 2 (two ranks, half the cores each), trial-epochs per hour side by side,
#     and the largest difference between the two runs' mAP at the same (trial, epoch);
#  4. evaluation cost: an ASHA sweep with eval_epochs = all against eval_epochs = rungs, the
#     sweep times side by side and whether the evaluated epochs agree;
#  5. the node-shared image cache: bench_image_cache (image memory of 1, 2, 4 ranks with and
#     without it, first image cold and warm), when it was built.
#   bash bench/sweep_bench.sh [BUILD_DIR]        (default build)
# SECTIONS="3 4" runs only those (default: all).
set -euo pipefail
BUILD=$(realpath "${1:-build}")
LMSWEEP="$BUILD/lmsweep"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
cd "$WORK"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_mpi_yield_when_idle=1
SECTIONS=${SECTIONS:-1 2 3 4 5}
want() { [[ " $SECTIONS " == *" $1 "* ]]; }
"$LMSWEEP" synth-data --out synth > /dev/null
RANKS=${RANKS:-8}
TRIALS=${TRIALS:-400}

if want 1; then
cat > fake.ini <<INI
[sweep]
name = bench
method = random
trials = $TRIALS
seed = 1
[space]
lambda = loguniform(0.1, 10)
gamma-neg = uniform(2, 12)
[train]
arch = vit:res=32,patch=8,width=32,layers=1,embed=16
train = unused
test = unused
labels = unused
epochs = 1
INI
mpirun --oversubscribe -np "$RANKS" "$LMSWEEP" sweep --config fake.ini --db fake.db --fake-epoch-seconds 0 > fake.log
sqlite3 -readonly fake.db "SELECT (max(finished_at) - min(started_at)) * 1000.0 / count(*), count(*) FROM trials" |
  awk -F'|' -v r="$RANKS" '{ printf "{\"bench\":\"coordinator_cost\",\"ranks\":%d,\"trials\":%d,\"ms_per_trial\":%.3f}\n", r, $2, $1;
                           printf "coordinator: %.2f ms per trivial trial (dispatch + 3 SQLite transactions), %d ranks\n", $1, r > "/dev/stderr" }'
fi

if want 2; then
NP=${SWEEP_NP:-2}
cat > real.ini <<INI
[sweep]
name = real
method = sobol
trials = 4
seed = 1
[space]
lambda = loguniform(0.1, 10)
gamma-neg = uniform(2, 12)
[train]
synthetic = synth
arch = vit:res=32,patch=8,width=64,layers=2,embed=32,text-width=64,text-layers=2,vocab=514
epochs = 3
batch-size = 32
lr = 5e-4
INI
start=$(date +%s.%N)
mpirun --oversubscribe -np "$NP" "$LMSWEEP" sweep --config real.ini --db real.db > real.log
end=$(date +%s.%N)
images=$(sqlite3 -readonly real.db "SELECT count(*) FROM epochs")   # epochs trained
awk -v s="$start" -v e="$end" -v ep="$images" -v np="$NP" 'BEGIN {
  t = e - s; n = ep * 400;   # 400 training images per epoch in the default synthetic set
  printf "{\"bench\":\"sweep_throughput\",\"ranks\":%d,\"trials\":4,\"epochs\":%d,\"seconds\":%.2f,\"trials_per_hour\":%.1f,\"train_images_per_s\":%.1f}\n", np, ep, t, 4 * 3600 / t, n / t;
  printf "sweep: 4 trials x 3 epochs of a small CLIP on the synthetic data in %.1f s with %d ranks (%.0f training images/s, evaluation included)\n", t, np, n / t > "/dev/stderr" }'
fi

# A study's (trial, epoch, map) rows as "trial epoch map" lines.
maps() { sqlite3 -readonly "$1" "SELECT t.number, e.epoch, e.map FROM epochs e JOIN trials t ON t.id = e.trial_id ORDER BY 1, 2"; }
# The largest |map a - map b| over the (trial, epoch) pairs both evaluated, and how many.
compare() {
  join -j1 <(maps "$1" | awk -F'|' '$3 != "" {print $1"-"$2, $3}' | sort) \
           <(maps "$2" | awk -F'|' '$3 != "" {print $1"-"$2, $3}' | sort) |
    awk '{ d = $2 - $3; if (d < 0) d = -d; if (d > m) m = d; n++ } END { printf "%d %.3g", n, m + 0 }'
}
seconds_of() { local s=$(date +%s.%N); "$@" > /dev/null; echo "$(date +%s.%N) - $s" | bc; }
SMALL="synthetic = synth
arch = vit:res=32,patch=8,width=64,layers=2,embed=32,text-width=64,text-layers=2,vocab=514
batch-size = 32
lr = 5e-4"

if want 3; then
for k in 1 2; do
  cat > pack$k.ini <<INI
[sweep]
name = pack
method = grid
seed = 1
trials_per_device = $k
[space]
lambda = choice(0.4, 1, 2, 4)
[train]
$SMALL
epochs = 3
INI
  t=$(seconds_of mpirun --oversubscribe -np "$k" "$LMSWEEP" sweep --config pack$k.ini --db pack$k.db)
  eval "t$k=$t"
done
epochs=$(sqlite3 -readonly pack1.db "SELECT count(*) FROM epochs")
read -r pairs diff <<<"$(compare pack1.db pack2.db)"
awk -v a="$t1" -v b="$t2" -v ep="$epochs" -v pairs="$pairs" -v diff="$diff" 'BEGIN {
  h1 = ep * 3600 / a; h2 = ep * 3600 / b;
  printf "{\"bench\":\"trials_per_device\",\"trial_epochs\":%d,\"k1_seconds\":%.2f,\"k2_seconds\":%.2f,\"k1_trial_epochs_per_hour\":%.0f,\"k2_trial_epochs_per_hour\":%.0f,\"speedup\":%.3f,\"pairs_compared\":%d,\"max_map_difference\":%s}\n", ep, a, b, h1, h2, h2 / h1, pairs, diff;
  printf "trials_per_device: k=1 %.0f trial-epochs/h (%.1f s), k=2 %.0f trial-epochs/h (%.1f s): %.2fx; mAP of the same (trial, epoch) differs by at most %s over %d pairs\n", h1, a, h2, b, h2 / h1, diff, pairs > "/dev/stderr" }'
fi

if want 4; then
for e in all rungs; do
  cat > eval_$e.ini <<INI
[sweep]
name = evals
method = grid
seed = 1
scheduler = asha
grace = 2
reduction = 2
eval_epochs = $e
[space]
lambda = choice(0.4, 1, 2, 4)
[train]
$SMALL
epochs = 8
INI
  t=$(seconds_of mpirun --oversubscribe -np 1 "$LMSWEEP" sweep --config eval_$e.ini --db eval_$e.db)
  eval "t_$e=$t"
done
scored=$(sqlite3 -readonly eval_rungs.db "SELECT count(*) FROM epochs WHERE map IS NOT NULL")
total=$(sqlite3 -readonly eval_rungs.db "SELECT count(*) FROM epochs")
read -r pairs diff <<<"$(compare eval_all.db eval_rungs.db)"
awk -v a="$t_all" -v b="$t_rungs" -v sc="$scored" -v tot="$total" -v pairs="$pairs" -v diff="$diff" 'BEGIN {
  printf "{\"bench\":\"eval_epochs\",\"all_seconds\":%.2f,\"rungs_seconds\":%.2f,\"speedup\":%.3f,\"epochs\":%d,\"scored_with_rungs\":%d,\"pairs_compared\":%d,\"max_map_difference\":%s}\n", a, b, a / b, tot, sc, pairs, diff;
  printf "eval_epochs: every epoch %.1f s, rungs %.1f s (%.2fx; %d of %d epochs scored); the scored epochs differ by at most %s over %d pairs\n", a, b, a / b, sc, tot, diff, pairs > "/dev/stderr" }'
fi

if want 5 && [ -x "$BUILD/bench/bench_image_cache" ]; then
  "$BUILD/bench/bench_image_cache"
fi
