"""The sampler benchmark's test functions and spaces, for Optuna (bench_sampler runs it).

Prints one JSON line per (function, sampler): the best value found after each evaluation
(maximised), per seed FIRST_SEED .. FIRST_SEED + SEEDS - 1. Same functions, spaces and budget as
bench_sampler.cpp.
  python3 sampler_functions.py EVALS SEEDS [FIRST_SEED [FUNCTION ...]]
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


# Held out: lmsweep's TPE defaults were not chosen on these (bench_sampler --functions all).
A3 = [[3, 10, 30], [0.1, 10, 35], [3, 10, 30], [0.1, 10, 35]]
P3 = [[3689, 1170, 2673], [4699, 4387, 7470], [1091, 8732, 5547], [381, 5743, 8828]]


def hartmann3(t):
    x = [t.suggest_float(f"x{i}", 0, 1) for i in range(3)]
    return sum(ALPHA[i] * math.exp(-sum(A3[i][j] * (x[j] - P3[i][j] * 1e-4) ** 2 for j in range(3))) for i in range(4))


def rosen4log(t):
    x = [t.suggest_float(f"x{i}", -2, 2) for i in range(4)]
    return -math.log1p(sum(100 * (x[i + 1] - x[i] ** 2) ** 2 + (1 - x[i]) ** 2 for i in range(3)))


def mixed6(t):
    o = t.suggest_categorical("opt", [0, 1, 2])
    w = math.log2(t.suggest_categorical("width", [64, 128, 256, 512, 1024]))
    lr = t.suggest_float("lr", 1e-5, 1e-1, log=True)
    wd = t.suggest_float("wd", 1e-6, 1e-2, log=True)
    d, wa = t.suggest_float("drop", 0, 0.5), t.suggest_float("warm", 0, 10)
    lo = math.log10(lr) + (3.5 if o == 1 else 2.5)
    return -(0.5 * (o == 2) + 0.3 * (w - 8.3) ** 2 + lo * lo + 0.5 * (math.log10(wd) + 4) ** 2 + 4 * (d - 0.1) ** 2
             + 0.02 * (wa - 3) ** 2)


FUNCTIONS = {"branin": branin, "hartmann6": hartmann6, "paper5d": paper5d, "hartmann3": hartmann3,
             "rosen4log": rosen4log, "mixed6": mixed6}


def main():
    evals, seeds = int(sys.argv[1]), int(sys.argv[2])
    first = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    names = sys.argv[4:] or ["branin", "hartmann6", "paper5d"]
    for name in names:
        f = FUNCTIONS[name]
        # TPESampler's defaults (multivariate for one objective since Optuna 4.x/5.0).
        for label, make in [("optuna-tpe", lambda s: optuna.samplers.TPESampler(seed=s))]:
            runs = []
            for seed in range(first, first + seeds):
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
