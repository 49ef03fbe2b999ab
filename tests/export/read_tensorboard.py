"""Reads an lmsweep TensorBoard export with the `tensorboard` package, as its server does.

    python read_tensorboard.py LOGDIR EXPECTED.json

EXPECTED.json: {"runs": {run: {"status": "completed"|..., "params": {...}, "scalars": {tag: [[step, value], ...]}}}}
(a run's scalars as TensorBoard must show them: after a resumed trial's purge, each step once).
Checks, through tensorboard's plugin_event_multiplexer (the server's reader):
  - every run's scalars: the tags, steps and values (as float32);
  - the HParams records, parsed by tensorboard.plugins.hparams.metadata: the experiment in the
    root run, each run's session_start_info (its parameters) and session_end_info (status);
  - the HParams plugin's own answer (list_session_groups, what the dashboard shows): one group
    per trial with its hparams, its status and its metrics' last values.
Prints "ok: N sessions" and exits 0, or prints what differs and exits 1.
"""

import json
import math
import sys

import numpy as np

from tensorboard.backend.event_processing import plugin_event_multiplexer
from tensorboard.plugins.hparams import api_pb2, metadata
from tensorboard.util import tensor_util

STATUS = {
    "completed": api_pb2.STATUS_SUCCESS,
    "pruned": api_pb2.STATUS_SUCCESS,
    "failed": api_pb2.STATUS_FAILURE,
    "interrupted": api_pb2.STATUS_UNKNOWN,  # no session_end_info until it ends
    "running": api_pb2.STATUS_UNKNOWN,
}
problems = []


def check(cond, what):
    if not cond:
        problems.append(what)


def f32(x):
    """A value as TensorBoard holds it: scalars are float32 (simple_value)."""
    return float(np.float32(x))


def close(a, b):
    return math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)


def check_scalars(mux, run, expected):
    tags = mux.GetAccumulator(run).Tags()["tensors"]
    for tag, points in expected["scalars"].items():
        if tag not in tags:
            problems.append(f"{run}: no scalar {tag} (tags: {sorted(tags)})")
            continue
        got = [(e.step, float(tensor_util.make_ndarray(e.tensor_proto))) for e in mux.Tensors(run, tag)]
        want = [(s, v) for s, v in points]
        check(
            len(got) == len(want) and all(g[0] == w[0] and close(g[1], f32(w[1]))
                                          for g, w in zip(got, want)),
            f"{run}/{tag}: got {got}, want {want}",
        )


def check_hparams(mux, expected):
    content = mux.PluginRunToTagToContent(metadata.PLUGIN_NAME)
    root = content.get(".", {})
    check(metadata.EXPERIMENT_TAG in root, f"no experiment in the root run (runs: {sorted(content)})")
    if metadata.EXPERIMENT_TAG in root:
        exp = metadata.parse_experiment_plugin_data(root[metadata.EXPERIMENT_TAG])
        infos = {h.name: h for h in exp.hparam_infos}
        check(sorted(infos) == sorted(expected[next(iter(expected))]["params"]), f"hparam infos {sorted(infos)}")
        if "batch-size" in infos:
            check([v.number_value for v in infos["batch-size"].domain_discrete.values] == [8, 16, 32],
                  f"batch-size domain {infos['batch-size']}")
        if "lambda" in infos:
            check(close(infos["lambda"].domain_interval.min_value, 0.1)
                  and close(infos["lambda"].domain_interval.max_value, 10), f"lambda domain {infos['lambda']}")
        metrics = [m.name.tag for m in exp.metric_infos]
        check(metrics[:1] == ["map"], f"metric infos {metrics}: the objective first")
    for run, want in expected.items():
        tags = content.get(run, {})
        check(metadata.SESSION_START_INFO_TAG in tags, f"{run}: no session_start_info")
        if metadata.SESSION_START_INFO_TAG in tags:
            start = metadata.parse_session_start_info_plugin_data(tags[metadata.SESSION_START_INFO_TAG])
            for name, value in want["params"].items():
                v = start.hparams.get(name)
                check(v is not None and close(v.number_value, value), f"{run}: hparam {name} = {v}, want {value}")
            check(start.group_name == run, f"{run}: group {start.group_name!r}")
        ends = metadata.SESSION_END_INFO_TAG in tags
        check(ends == (STATUS[want["status"]] != api_pb2.STATUS_UNKNOWN), f"{run}: session_end_info present = {ends}")
        if ends:
            end = metadata.parse_session_end_info_plugin_data(tags[metadata.SESSION_END_INFO_TAG])
            check(end.status == STATUS[want["status"]], f"{run}: status {end.status}, want {want['status']}")


def check_dashboard(mux, logdir, expected):
    """What the HParams dashboard's table gets: the plugin's list_session_groups."""
    from tensorboard import context
    from tensorboard.backend.event_processing import data_provider
    from tensorboard.plugins import base_plugin
    from tensorboard.plugins.hparams import backend_context, list_session_groups

    provider = data_provider.MultiplexerDataProvider(mux, logdir)
    ctx = backend_context.Context(base_plugin.TBContext(logdir=logdir, multiplexer=mux, data_provider=provider))
    request = api_pb2.ListSessionGroupsRequest(
        start_index=0, slice_size=100, include_metrics=True,
        allowed_statuses=[api_pb2.STATUS_UNKNOWN, api_pb2.STATUS_SUCCESS, api_pb2.STATUS_FAILURE,
                          api_pb2.STATUS_RUNNING])
    response = list_session_groups.Handler(context.RequestContext(), ctx, "", request).run()
    groups = {g.name: g for g in response.session_groups}
    check(sorted(groups) == sorted(expected), f"dashboard groups {sorted(groups)}, want {sorted(expected)}")
    for run, want in expected.items():
        g = groups.get(run)
        if g is None:
            continue
        check(len(g.sessions) == 1 and g.sessions[0].status == STATUS[want["status"]],
              f"{run}: dashboard sessions {list(g.sessions)}")
        values = {m.name.tag: m for m in g.metric_values}
        if "map" not in want["scalars"]:
            check("map" not in values, f"{run}: dashboard map {values.get('map')} of a trial without epochs")
            continue
        last_step, last_map = want["scalars"]["map"][-1]
        m = values.get("map")
        check(m is not None and m.training_step == last_step and close(m.value, f32(last_map)),
              f"{run}: dashboard map {m}, want {last_map} at step {last_step}")


def main():
    logdir, expected_path = sys.argv[1], sys.argv[2]
    with open(expected_path) as f:
        expected = json.load(f)["runs"]
    mux = plugin_event_multiplexer.EventMultiplexer()
    mux.AddRunsFromDirectory(logdir)
    mux.Reload()
    runs = sorted(mux.Runs())
    check(runs == sorted(["."] + list(expected)), f"runs {runs}")
    for run, want in expected.items():
        if run in runs:
            check_scalars(mux, run, want)
    check_hparams(mux, expected)
    check_dashboard(mux, logdir, expected)
    if problems:
        print("\n".join(problems))
        return 1
    print(f"ok: {len(expected)} sessions")
    return 0


if __name__ == "__main__":
    sys.exit(main())
