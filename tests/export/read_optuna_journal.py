"""Loads an Optuna journal file with the optuna this python has and prints the study as JSON.

    python read_optuna_journal.py JOURNAL STUDY_NAME

The last line of the output is one JSON object (the C++ test parses it): optuna's version, the
study's directions and user attributes, and every trial as Optuna sees it (state, params,
distributions, value(s), intermediate values, datetimes as Unix times, user attributes).
Works with Optuna 3.1 (JournalFileStorage) and Optuna >= 4 (journal.JournalFileBackend).
"""
import json
import logging
import sys
import warnings

warnings.simplefilter("ignore")  # ExperimentalWarning (3.1), deprecations: stderr is captured

import optuna  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.ERROR)
logging.disable(logging.WARNING)


def open_storage(path):
    try:
        from optuna.storages.journal import JournalFileBackend
        backend = JournalFileBackend(path)
    except ImportError:  # Optuna 3.x
        backend = optuna.storages.JournalFileStorage(path)
    return optuna.storages.JournalStorage(backend)


def distribution(d):
    out = {"type": type(d).__name__}
    if isinstance(d, optuna.distributions.CategoricalDistribution):
        out["choices"] = list(d.choices)
    else:
        out.update(low=d.low, high=d.high, log=d.log, step=d.step)
    return out


def stamp(dt):
    return None if dt is None else dt.timestamp()  # naive datetimes are local time, as Optuna reads them


def trial(t):
    return {
        "number": t.number,
        "state": t.state.name,
        "params": t.params,
        "distributions": {k: distribution(d) for k, d in t.distributions.items()},
        "value": t.value if t.values is None or len(t.values) == 1 else None,
        "values": t.values,
        "intermediate_values": {str(k): v for k, v in t.intermediate_values.items()},
        "datetime_start": stamp(t.datetime_start),
        "datetime_complete": stamp(t.datetime_complete),
        "user_attrs": t.user_attrs,
    }


def main():
    path, name = sys.argv[1], sys.argv[2]
    study = optuna.load_study(study_name=name, storage=open_storage(path))
    out = {
        "optuna": optuna.__version__,
        "study_name": study.study_name,
        "directions": [d.name for d in study.directions],
        "user_attrs": study.user_attrs,
        "trials": [trial(t) for t in study.get_trials(deepcopy=False)],
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
