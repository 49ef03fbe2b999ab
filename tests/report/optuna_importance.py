"""Optuna's PED-ANOVA importances of a study in an Optuna journal file, as one JSON line.

    python optuna_importance.py JOURNAL STUDY_NAME

Prints {"optuna": version, "importances": {param: importance}} (normalised, as
optuna.importance.get_param_importances returns them). Needs Optuna >= 3.6.
"""
import json
import logging
import sys
import warnings

warnings.simplefilter("ignore")

import optuna  # noqa: E402
from optuna.importance import PedAnovaImportanceEvaluator  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.ERROR)
logging.disable(logging.WARNING)


def main():
    path, name = sys.argv[1], sys.argv[2]
    from optuna.storages.journal import JournalFileBackend
    storage = optuna.storages.JournalStorage(JournalFileBackend(path))
    study = optuna.load_study(study_name=name, storage=storage)
    imp = optuna.importance.get_param_importances(study, evaluator=PedAnovaImportanceEvaluator())
    print(json.dumps({"optuna": optuna.__version__, "importances": imp}))


if __name__ == "__main__":
    main()
