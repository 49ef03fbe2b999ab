"""The sampler benchmark's test functions and spaces, for Optuna (bench_sampler runs it).

Prints one JSON line per (function, sampler): the best value found after each evaluation
(maximised), per seed. Same functions, spaces and budget as bench_sampler.cpp.
  python3 sampler_functions.py EVALS SEEDS
"""
import json
import math
import sys

import optuna

optuna.logging.set_verbosity(optuna.logging.WARNING)


def branin(t):
    x, y = t.suggest_float("x", -5, 10), t.suggest_float("y", 0, 15)
    b, c, s = 5.1 / (4 * math.pi ** 2), 5 / math.pi, 1 / (8 * math.pi)
    return -((y - b * x * x + c * x - 6) ** 2 + 10 * (1 - s) * math.cos(x) + 10)


A = [[10, 3, 17, 3.5, 1.7, 8], [0.05, 10, 17, 0.1, 8, 14], [3, 3.5, 1.7, 10, 17, 8], [17, 8, 0.05, 10, 0.1, 14]]
P = [[1312, 1696, 5569, 124, 8283, 5886], [2329, 4135, 8307, 3736, 1004, 9991],
     [2348, 1451, 3522, 2883, 3047, 6650], [4047, 8828, 8732, 5743, 1091, 381]]
ALPHA = [1.0, 1.2, 3.0, 3.2]


def hartmann6(t):
    x = [t.suggest_float(f"x{i}", 0, 1) for i in range(6)]
    return sum(ALPHA[i] * math.exp(-sum(A[i][j] * (x[j] - P[i][j] * 1e-4) ** 2 for j in range(6))) for i in range(4))


def paper5d(t):
    b = t.suggest_categorical("batch-size", [8, 16, 32, 64])
    g = t.suggest_float("gamma-neg", 2, 12)
    lam = t.suggest_float("lambda", 0.1, 10, log=True)
    s = t.suggest_float("s", 1, 2)
    ls = t.suggest_float("label-smoothing", 0.01, 0.1, log=True)
    return -((math.log2(b) - 5) ** 2 + ((g - 9) / 3) ** 2 + 4 * (math.log10(lam) - 0.3) ** 2 + (3 * (s - 1.2)) ** 2
             + 4 * (math.log10(ls) - math.log10(0.03)) ** 2)


def main():
    evals, seeds = int(sys.argv[1]), int(sys.argv[2])
    for name, f in [("branin", branin), ("hartmann6", hartmann6), ("paper5d", paper5d)]:
        # TPESampler's defaults (multivariate for one objective since Optuna 4.x/5.0).
        for label, make in [("optuna-tpe", lambda s: optuna.samplers.TPESampler(seed=s))]:
            runs = []
            for seed in range(1, seeds + 1):
                study = optuna.create_study(direction="maximize", sampler=make(seed))
                study.optimize(f, n_trials=evals)
                best, curve = -math.inf, []
                for trial in study.trials:
                    best = max(best, trial.value)
                    curve.append(best)
                runs.append(curve)
            print(json.dumps({"function": name, "sampler": label, "runs": runs}), flush=True)


if __name__ == "__main__":
    main()
