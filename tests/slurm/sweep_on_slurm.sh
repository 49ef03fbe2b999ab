#!/usr/bin/env bash
# lmsweep on a real (private, one-node) SLURM cluster started by cluster.sh:
#   sweep_on_slurm.sh complete LMSWEEP   a small CPU sweep on the synthetic data, submitted with
#                                        `lmsweep submit`, runs to the end: every trial completed.
#   sweep_on_slurm.sh requeue LMSWEEP    `scontrol requeue` while trials run: the job restarts,
#                                        the sweep finishes, no completed trial is lost or rerun,
#                                        interrupted trials resume from their checkpoint.
# Exit 0 pass, 1 fail, 77 skip (not root, SLURM or sqlite3 missing).
set -euo pipefail
MODE=$1
LMSWEEP=$(realpath "$2")
HERE=$(cd "$(dirname "$0")" && pwd -P)
CLUSTER="$HERE/cluster.sh"

skip() { echo "SKIP: $*"; exit 77; }
[ "$(id -u)" = 0 ] || skip "needs root (slurmd runs jobs as root here)"
for b in /usr/sbin/slurmctld /usr/sbin/slurmd; do [ -x "$b" ] || skip "$b missing: apt-get install slurmctld slurmd slurm-client"; done
for b in sbatch scontrol sqlite3; do command -v "$b" >/dev/null || skip "$b missing"; done

DIR=$(mktemp -d "${TMPDIR:-/tmp}/lmsweep-slurm.XXXXXX")
WORK="$DIR/work"
mkdir -p "$WORK"
FAILED=1
cleanup() {
  "$CLUSTER" stop "$DIR" >/dev/null 2>&1 || true
  if [ "$FAILED" = 1 ]; then
    for f in "$WORK"/*.log "$DIR"/log/slurmctld.log; do [ -f "$f" ] && { echo "--- $f (tail)"; tail -n 40 "$f"; }; done
  fi
  if [ "${LMSWEEP_SLURM_KEEP:-0}" = 1 ]; then echo "kept $DIR"; else rm -rf "$DIR"; fi
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

"$CLUSTER" start "$DIR" >/dev/null
# shellcheck disable=SC1091
. "$DIR/env.sh"

DB="$WORK/sweep.db"
q() { sqlite3 -readonly "$DB" "$1" 2>/dev/null || true; }
count() { local n; n=$(q "$1"); echo "${n:-0}"; }
job_state() { timeout 5 scontrol show job "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2 || true; }
restarts() { timeout 5 scontrol show job "$1" 2>/dev/null | grep -o 'Restarts=[0-9]*' | cut -d= -f2 || true; }
# wait_for SECONDS DESCRIPTION COMMAND...: polls every 0.2 s.
wait_for() {
  local limit=$1 what=$2; shift 2
  local end=$((SECONDS + limit))
  until "$@"; do
    [ $SECONDS -lt $end ] || fail "timed out after ${limit}s waiting for: $what"
    sleep 0.2
  done
}

# requeue: epochs long enough that the requeue lands while the trial it waited for still runs
# (an epoch of this tiny model takes ~0.2 s).
if [ "$MODE" = complete ]; then TRIALS=3; EPOCHS=2; else TRIALS=4; EPOCHS=20; fi
cat > "$WORK/sweep.ini" <<INI
[sweep]
name = slurm
method = random
trials = $TRIALS
seed = 3
[space]
lambda = loguniform(0.1, 10)
gamma-neg = uniform(2, 12)
[train]
synthetic = synth
arch = vit:res=32,patch=8,width=32,layers=1,embed=16,text-width=32,text-layers=1,vocab=514
epochs = $EPOCHS
batch-size = 16
lr = 5e-4
threads = 1
INI
cd "$WORK"
OUT=$("$LMSWEEP" submit --config sweep.ini --db "$DB" --gpus-per-node 0 --ntasks 2 --time 10:00)
echo "$OUT"
SCRIPT=$(echo "$OUT" | head -1)
JOB=$(echo "$OUT" | sed -n 's/^submitted job \([0-9]*\).*/\1/p')
[ -f "$SCRIPT" ] || fail "submit did not write its script ($SCRIPT)"
[ -n "$JOB" ] || fail "submit printed no job id"

completed() { [ "$(q "SELECT count(*) FROM trials WHERE status='completed'")" = "$TRIALS" ]; }
finished() { [ "$(job_state "$JOB")" = COMPLETED ]; }

if [ "$MODE" = complete ]; then
  wait_for 240 "job $JOB to complete" finished
  completed || fail "not every trial completed: $(q "SELECT number, status, error FROM trials")"
  FAILED=0
  echo "PASS: job $JOB completed, $TRIALS/$TRIALS trials completed"
  exit 0
fi

# requeue: wait until a trial has completed and another is past its first epoch, with at
# least 12 epochs to go.
running_past_epoch_1() {
  [ "$(count "SELECT count(*) FROM trials WHERE status='completed'")" -ge 1 ] &&
    [ "$(count "SELECT count(*) FROM trials t WHERE t.status='running' AND
           (SELECT max(epoch) FROM epochs e WHERE e.trial_id = t.id) BETWEEN 1 AND $((EPOCHS - 12))")" -ge 1 ]
}
wait_for 240 "a completed trial and a running one past epoch 1" running_past_epoch_1
timeout 10 scontrol requeue "$JOB"
# The first run stops: its running trials save their state and are recorded as interrupted.
no_running() { [ "$(count "SELECT count(*) FROM trials WHERE status='running'")" = 0 ]; }
wait_for 60 "the stopped job's trials to be recorded as interrupted" no_running
BEFORE_COMPLETED=$(q "SELECT t.number || ':' || t.attempts || ':' || group_concat(e.epoch || '=' || e.map || '/' || e.train_loss, ',')
                      FROM trials t JOIN epochs e ON e.trial_id = t.id WHERE t.status='completed' GROUP BY t.id ORDER BY t.number")
INTERRUPTED=$(q "SELECT number FROM trials WHERE status='interrupted' ORDER BY number" | tr '\n' ' ')
# ... those of them with a finished epoch have a checkpoint to resume from.
RESUMABLE=$(q "SELECT t.number FROM trials t WHERE t.status='interrupted' AND
               (SELECT max(epoch) FROM epochs e WHERE e.trial_id = t.id) >= 1 ORDER BY t.number" | tr '\n' ' ')
[ -n "$INTERRUPTED" ] || fail "no trial was interrupted by the requeue: $(q "SELECT number, status FROM trials")"
wait_for 120 "job $JOB to restart" test "$(restarts "$JOB")" = 1
wait_for 240 "the requeued job to complete" finished
completed || fail "not every trial completed after the requeue: $(q "SELECT number, status, attempts, error FROM trials")"

# Completed trials were neither rerun nor changed.
for row in $BEFORE_COMPLETED; do
  n=${row%%:*}
  now=$(q "SELECT t.number || ':' || t.attempts || ':' || group_concat(e.epoch || '=' || e.map || '/' || e.train_loss, ',')
           FROM trials t JOIN epochs e ON e.trial_id = t.id WHERE t.number=$n GROUP BY t.id")
  [ "$now" = "$row" ] || fail "completed trial $n changed across the requeue: '$row' -> '$now'"
done
# Trials stopped by the requeue were interrupted, then resumed: a second attempt that did not
# start again from epoch 1 (the log of the restarted job shows where each trial went on).
RESTART_LOG=$(awk '/restart 1,/ {on = 1} on' "$WORK"/lmsweep-sweep-*.log)
for n in $INTERRUPTED; do
  attempts=$(q "SELECT attempts FROM trials WHERE number=$n")
  [ "$attempts" = 2 ] || fail "trial $n: $attempts attempts, expected 2"
done
for n in $RESUMABLE; do
  if echo "$RESTART_LOG" | grep -q "^trial $n epoch 1/"; then
    fail "trial $n started again from epoch 1 instead of resuming from its checkpoint"
  fi
  echo "$RESTART_LOG" | grep -q "^trial $n epoch" || fail "trial $n trained no epoch after the restart"
done
[ -n "$RESUMABLE" ] || fail "no interrupted trial had finished an epoch: nothing shows a resume"
grep -q "requeueing job" "$WORK"/lmsweep-sweep-*.log || true
FAILED=0
echo "PASS: job $JOB requeued once; $TRIALS trials completed; completed ones unchanged; interrupted trials ($INTERRUPTED) resumed, from a checkpoint: $RESUMABLE"
