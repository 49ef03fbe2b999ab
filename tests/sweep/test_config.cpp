// [sweep] config and the INI reader.
#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "support/shared_data.h"
#include "sweep/config.h"

namespace lmsweep::sweep {
namespace {

// Expects `fn` to throw lmsweep::Error whose message contains every one of `parts`.
template <typename Fn>
void expect_error(Fn&& fn, std::initializer_list<std::string> parts) {
  try {
    fn();
    ADD_FAILURE() << "no lmsweep::Error thrown; expected one mentioning '" << *parts.begin() << "'";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "multi-line message: " << msg;
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
  }
}

const char* kIssueExample = R"([sweep]
name = voc_vitb16        ; a study; several studies may share one database
method = random          ; grid | random | sobol
trials = 200             ; for grid: the grid size unless given
seed = 1
gpus_per_trial = 1
objective = map          ; map | map_head | map_middle | map_tail
scheduler = asha         ; none | asha (grace = 5 epochs, reduction = 2 by default)
[space]
batch-size = choice(8, 16, 32, 64)
gamma-neg = uniform(2, 12)
lambda = loguniform(0.1, 10)
s = uniform(1, 2)
label-smoothing = loguniform(0.01, 0.1)
)";

TEST(SweepConfig, IniTextKeepsOrderDropsCommentsAndNamesLines) {
  const IniFile ini = parse_ini_text(std::string("# header comment\n") + kIssueExample +
                                         "[train]\nloss = 'clip;bal'  # quoted ; stays\n",
                                     "sweep.ini");
  ASSERT_TRUE(ini.has_section("sweep"));
  ASSERT_TRUE(ini.has_section("space"));
  EXPECT_FALSE(ini.has_section("nope"));
  const KeyValues sweep = ini.section("sweep");
  ASSERT_EQ(sweep.size(), 7u);
  EXPECT_EQ(sweep[0].key, "name");
  EXPECT_EQ(sweep[0].value, "voc_vitb16");
  EXPECT_EQ(sweep[0].origin, "sweep.ini:3");
  EXPECT_EQ(sweep[6].key, "scheduler");
  EXPECT_EQ(sweep[6].value, "asha");
  const KeyValues space = ini.section("space");
  ASSERT_EQ(space.size(), 5u);
  EXPECT_EQ(space[0].key, "batch-size");
  EXPECT_EQ(space[0].value, "choice(8, 16, 32, 64)");
  EXPECT_EQ(space[4].key, "label-smoothing");
  EXPECT_EQ(space[4].origin, "sweep.ini:15");
  ASSERT_EQ(ini.section("train").size(), 1u);
  EXPECT_EQ(ini.section("train")[0].value, "'clip;bal'");
}

TEST(SweepConfig, StripInlineComment) {
  EXPECT_EQ(strip_inline_comment("  a = b ; c"), "a = b");
  EXPECT_EQ(strip_inline_comment("a#b"), "a#b");  // no whitespace before '#': part of the value
  EXPECT_EQ(strip_inline_comment("x = \"1 ; 2\" # c"), "x = \"1 ; 2\"");
  EXPECT_EQ(strip_inline_comment("; whole line"), "");
}

TEST(SweepConfig, IniErrorsNameFileAndLine) {
  expect_error([] { parse_ini_text("[sweep]\nname voc\n", "a.ini"); }, {"a.ini:2", "key = value"});
  expect_error([] { parse_ini_text("[sweep\n", "b.ini"); }, {"b.ini:1", "section header"});
  expect_error([] { parse_ini_text("[sweep]\n= 3\n", "c.ini"); }, {"c.ini:2", "missing key"});
  expect_error([] { parse_ini_file("/nonexistent/dir/sweep.ini"); },
               {"/nonexistent/dir/sweep.ini", "cannot read"});
}

TEST(SweepConfig, IniFileRoundTrip) {
  const auto dir = lmsweep::testing::temp_dir("sweep_ini");
  const auto path = (dir / "s.ini").string();
  std::ofstream(path) << kIssueExample;
  const IniFile ini = parse_ini_file(path);
  EXPECT_EQ(ini.section("space").size(), 5u);
  EXPECT_EQ(ini.section("space")[1].origin, path + ":11");
  std::filesystem::remove_all(dir);
}

TEST(SweepConfig, ParsesTheIssueExample) {
  const IniFile ini = parse_ini_text(kIssueExample, "sweep.ini");
  const SweepConfig cfg = parse_sweep_config(ini.section("sweep"));
  EXPECT_EQ(cfg.name, "voc_vitb16");
  EXPECT_EQ(cfg.method, SamplingMethod::Random);
  EXPECT_EQ(cfg.trials, 200);
  EXPECT_EQ(cfg.seed, 1u);
  EXPECT_EQ(cfg.gpus_per_trial, 1);
  EXPECT_EQ(cfg.objective, "map");
  EXPECT_EQ(cfg.scheduler, SchedulerKind::Asha);
  EXPECT_EQ(cfg.grace, 5);
  EXPECT_DOUBLE_EQ(cfg.reduction, 2.0);
  EXPECT_EQ(cfg.grid_points, 3);
  const nlohmann::json j = cfg.to_json();
  EXPECT_EQ(j["method"], "random");
  EXPECT_EQ(j["scheduler"], "asha");
  EXPECT_EQ(j["objective"], "map");
  EXPECT_EQ(j["trials"], 200);
}

TEST(SweepConfig, AcceptsDashesAndAllValues) {
  const SweepConfig cfg = parse_sweep_config(to_key_values({{"name", "s1"},
                                                            {"method", "Grid"},
                                                            {"gpus-per-trial", "2"},
                                                            {"objective", "map_tail"},
                                                            {"grace", "3"},
                                                            {"reduction", "3"},
                                                            {"grid-points", "5"}}));
  EXPECT_EQ(cfg.method, SamplingMethod::Grid);
  EXPECT_EQ(cfg.trials, 0);  // grid: the grid size
  EXPECT_EQ(cfg.gpus_per_trial, 2);
  EXPECT_EQ(cfg.objective, "map_tail");
  EXPECT_EQ(cfg.grace, 3);
  EXPECT_DOUBLE_EQ(cfg.reduction, 3.0);
  EXPECT_EQ(cfg.grid_points, 5);
  EXPECT_EQ(to_string(TrialKind::Command), "command");
  EXPECT_EQ(parse_trial_kind("lmclip"), TrialKind::Lmclip);
  EXPECT_EQ(parse_sampling_method("sobol"), SamplingMethod::Sobol);
  EXPECT_EQ(parse_scheduler_kind("none"), SchedulerKind::None);
}

TEST(SweepConfig, BadInputErrors) {
  auto parse = [](std::vector<std::pair<std::string, std::string>> kv) {
    return [kv] { parse_sweep_config(to_key_values(kv), "sweep.ini [sweep]"); };
  };
  expect_error(parse({{"name", "a"}, {"trials", "3"}, {"trails", "3"}}),
               {"unknown key 'trails'", "valid: name, method, trials"});
  expect_error(parse({{"name", "a"}, {"trials", "3"}, {"trials", "4"}}), {"trials", "twice"});
  expect_error(parse({{"name", "a"}, {"trials", "3"}, {"method", "bayes"}}),
               {"method", "'bayes'", "grid | random | sobol | tpe"});
  expect_error(parse({{"name", "a"}, {"trials", "3"}, {"objective", "acc"}}),
               {"objective 'acc' is not a metric LM-CLIP trials record", "map, map_head, map_middle, map_tail"});
  expect_error(parse({{"name", "a"}, {"trials", "3"}, {"scheduler", "hyperband"}}),
               {"scheduler", "none | asha"});
  expect_error(parse({{"name", "a"}, {"trials", "many"}}), {"trials", "'many'", "integer"});
  expect_error(parse({{"name", "a"}, {"trials", "0"}}), {"trials = 0", ">= 1"});
  expect_error(parse({{"name", "a"}, {"method", "random"}}),
               {"sweep.ini [sweep]", "trials is missing", "random"});
  expect_error(parse({{"name", "a"}, {"trials", "3"}, {"seed", "-1"}}), {"seed = -1"});
  expect_error(parse({{"name", "a"}, {"trials", "3"}, {"gpus_per_trial", "0"}}), {"gpus_per_trial"});
  expect_error(parse({{"name", "a"}, {"trials", "3"}, {"reduction", "1"}}), {"reduction", "> 1"});
  expect_error(parse({{"name", "a"}, {"trials", "3"}, {"grace", "0"}}), {"grace"});
  expect_error(parse({{"name", "a"}, {"method", "grid"}, {"grid_points", "1"}}), {"grid_points"});
  expect_error(parse({{"trials", "3"}}), {"name is missing"});
  expect_error(parse({{"name", "a b"}, {"trials", "3"}}), {"name = 'a b'"});
  expect_error(parse({{"name", "a"}, {"trials", "3"}, {"watchdog_seconds", "-5"}}),
               {"watchdog_seconds = -5", "0 (auto) or at least 1 second"});
  expect_error(parse({{"name", "a"}, {"trials", "3"}, {"watchdog_seconds", "soon"}}), {"watchdog_seconds", "'soon'"});
  expect_error(parse({{"name", "a"}, {"trials", "3"}, {"max_attempts", "0"}}), {"max_attempts"});
  expect_error(parse({{"name", "a"}, {"trials", "3"}, {"lease_seconds", "1"}}), {"lease_seconds = 1", "at least 5"});
}

TEST(SweepConfig, FaultToleranceKeys) {
  const auto cfg = parse_sweep_config(
      to_key_values({{"name", "a"}, {"trials", "3"}, {"watchdog-seconds", "90"}, {"max_attempts", "5"},
                     {"lease_seconds", "120"}}));
  EXPECT_EQ(cfg.watchdog_seconds, 90);
  EXPECT_EQ(cfg.max_attempts, 5);
  EXPECT_EQ(cfg.lease_seconds, 120);
  const SweepConfig defaults = parse_sweep_config(to_key_values({{"name", "a"}, {"trials", "3"}}));
  EXPECT_EQ(defaults.watchdog_seconds, 0);  // auto
  EXPECT_EQ(defaults.max_attempts, 3);
  EXPECT_EQ(defaults.lease_seconds, 60);
}

TEST(SweepConfig, AByteOrderMarkIsNotPartOfTheFirstLine) {
  const IniFile ini = parse_ini_text("\xEF\xBB\xBF[sweep]\nname = x\n", "s.ini");
  ASSERT_TRUE(ini.has_section("sweep"));
  EXPECT_EQ(ini.section("sweep")[0].value, "x");
}

TEST(SweepConfig, ErrorsCarryTheLine) {
  const IniFile ini = parse_ini_text("[sweep]\nname = x\ntrials = lots\n", "s.ini");
  expect_error([&] { parse_sweep_config(ini.section("sweep")); }, {"s.ini:3", "trials", "'lots'"});
}

}  // namespace
}  // namespace lmsweep::sweep

namespace lmsweep::sweep {
namespace {

TEST(SweepConfig, ObjectivesCommandTrialsAndWarmStart) {
  const SweepConfig mo = parse_sweep_config(to_key_values(
      {{"name", "m"}, {"method", "tpe"}, {"trials", "8"}, {"objectives", "map_head , map_tail"}, {"warm_start", "old"}}));
  EXPECT_EQ(mo.objectives, (std::vector<std::string>{"map_head", "map_tail"}));
  EXPECT_EQ(mo.objective, "map_head");  // the first: best's ranking and each trial's best epoch
  EXPECT_EQ(mo.warm_start, "old");
  EXPECT_EQ(mo.to_json()["objectives"], nlohmann::json({"map_head", "map_tail"}));
  const SweepConfig cmd = parse_sweep_config(to_key_values({{"name", "c"}, {"trials", "4"}, {"trial", "command"},
                                                            {"command", "python3 t.py --lr {lr}"},
                                                            {"objective", "val_acc"}, {"stop-grace-seconds", "3"}}));
  EXPECT_EQ(cmd.trial, TrialKind::Command);
  EXPECT_EQ(cmd.objective, "val_acc");  // a command trial's own metric
  EXPECT_DOUBLE_EQ(cmd.stop_grace_seconds, 3);
}

TEST(SweepConfig, ObjectivesCommandTrialsAndWarmStartBadInput) {
  auto parse = [](std::vector<std::pair<std::string, std::string>> kv) {
    kv.insert(kv.begin(), {{"name", "a"}, {"trials", "3"}});
    return [kv] { parse_sweep_config(to_key_values(kv), "s.ini [sweep]"); };
  };
  expect_error(parse({{"objectives", "map_head"}}), {"objectives = map_head", "two or more"});
  expect_error(parse({{"objectives", "map_head, map_tial"}}),
               {"objective 'map_tial' is not a metric LM-CLIP trials record", "map_head, map_middle"});
  expect_error(parse({{"objectives", "map_head, map_tail"}, {"objective", "map"}}), {"the first of objectives"});
  expect_error(parse({{"objectives", "map_head, map_tail"}, {"scheduler", "asha"}}), {"ASHA ranks trials by one"});
  expect_error(parse({{"objectives", "map_tail, map_tail"}}), {"listed twice"});
  expect_error(parse({{"command", "python3 t.py"}}), {"needs trial = command"});
  expect_error(parse({{"trial", "command"}}), {"trial = command needs command ="});
  expect_error(parse({{"trial", "script"}}), {"trial = 'script' is not known", "lmclip | command"});
  expect_error(parse({{"trial", "command"}, {"command", "t"}, {"objective", "val acc"}}),
               {"objective 'val acc': a metric's name"});
  expect_error(parse({{"warm_start", "old"}}), {"warm_start = old feeds TPE's history", "method = tpe"});
  expect_error(parse({{"method", "tpe"}, {"warm_start", "a"}}), {"warm_start = a is this study"});
}

}  // namespace
}  // namespace lmsweep::sweep

namespace lmsweep::sweep {
namespace {

TEST(SweepConfig, EvaluationScheduleAndTrialsPerDevice) {
  const SweepConfig c = parse_sweep_config(to_key_values({{"name", "e"}, {"trials", "8"}, {"scheduler", "asha"},
                                                          {"grace", "5"}, {"reduction", "2"}, {"eval_epochs", "rungs"},
                                                          {"eval_last", "2"}, {"trials-per-device", "2"}}));
  EXPECT_EQ(c.eval_epochs, SweepConfig::EvalEpochs::Rungs);
  EXPECT_EQ(c.eval_last, 2);
  EXPECT_FALSE(c.eval_every);
  EXPECT_EQ(c.trials_per_device, 2);
  EXPECT_EQ(c.rung_epochs(50), (std::vector<int64_t>{5, 10, 20, 40}));
  EXPECT_EQ(c.to_json()["eval_epochs"], "rungs");
  EXPECT_EQ(c.to_json()["trials_per_device"], 2);
  // A reduction that is not an integer: each rung at the first whole epoch reaching it (ASHA
  // decides there).
  const SweepConfig r = parse_sweep_config(to_key_values({{"name", "e"}, {"trials", "8"}, {"scheduler", "asha"},
                                                          {"grace", "2"}, {"reduction", "1.5"}}));
  EXPECT_EQ(r.rung_epochs(6), (std::vector<int64_t>{2, 3, 5}));
  EXPECT_TRUE(parse_sweep_config(to_key_values({{"name", "e"}, {"trials", "8"}})).rung_epochs(50).empty());
  const SweepConfig defaults = parse_sweep_config(to_key_values({{"name", "e"}, {"trials", "8"}}));
  EXPECT_EQ(defaults.eval_epochs, SweepConfig::EvalEpochs::All);
  EXPECT_EQ(defaults.trials_per_device, 0);
}

TEST(SweepConfig, EvaluationScheduleBadInput) {
  auto parse = [](std::vector<std::pair<std::string, std::string>> kv) {
    kv.insert(kv.begin(), {{"name", "a"}, {"trials", "3"}});
    return [kv] { parse_sweep_config(to_key_values(kv), "s.ini [sweep]"); };
  };
  expect_error(parse({{"eval_epochs", "rungs"}}), {"eval_epochs = rungs needs scheduler = asha"});
  expect_error(parse({{"eval_epochs", "some"}}), {"eval_epochs = 'some'", "all", "rungs"});
  expect_error(parse({{"eval_every", "-1"}}), {"eval_every"});
  expect_error(parse({{"trials_per_device", "0"}}), {"trials_per_device"});
}

}  // namespace
}  // namespace lmsweep::sweep

namespace lmsweep::sweep {
namespace {

TEST(SweepConfig, TpeEstimatorKeys) {
  const SweepConfig d = parse_sweep_config(to_key_values({{"name", "t"}, {"method", "tpe"}, {"trials", "8"}}));
  EXPECT_EQ(d.tpe_defaults, TpeDefaults::Lmsweep);
  EXPECT_FALSE(d.tpe_gamma || d.tpe_ei_candidates || d.tpe_categorical_prior || d.tpe_bandwidth);
  const SweepConfig c = parse_sweep_config(to_key_values(
      {{"name", "t"}, {"method", "tpe"}, {"trials", "8"}, {"tpe-defaults", "Optuna"}, {"tpe_gamma", "0.25"},
       {"tpe_ei_candidates", "96"}, {"tpe_categorical_prior", "2"}, {"tpe_bandwidth", "0.5"}}));
  EXPECT_EQ(c.tpe_defaults, TpeDefaults::Optuna);
  EXPECT_EQ(c.tpe_gamma, 0.25);
  EXPECT_EQ(c.tpe_ei_candidates, 96);
  EXPECT_EQ(c.tpe_categorical_prior, 2.0);
  EXPECT_EQ(c.tpe_bandwidth, 0.5);
  EXPECT_EQ(c.to_json()["tpe_defaults"], "optuna");
  EXPECT_EQ(c.to_json()["tpe_bandwidth"], 0.5);
  EXPECT_TRUE(d.to_json()["tpe_gamma"].is_null());
}

TEST(SweepConfig, TpeEstimatorKeysBadInput) {
  auto parse = [](std::vector<std::pair<std::string, std::string>> kv) {
    kv.insert(kv.begin(), {{"name", "a"}, {"trials", "3"}, {"method", "tpe"}});
    return [kv] { parse_sweep_config(to_key_values(kv), "s.ini [sweep]"); };
  };
  expect_error(parse({{"tpe_defaults", "hyperopt"}}), {"tpe_defaults = 'hyperopt' is not known", "lmsweep | optuna"});
  expect_error(parse({{"tpe_gamma", "0"}}), {"tpe_gamma = 0", "(0, 1]"});
  expect_error(parse({{"tpe_gamma", "1.5"}}), {"tpe_gamma = 1.5", "(0, 1]"});
  expect_error(parse({{"tpe_ei_candidates", "0"}}), {"tpe_ei_candidates = 0", "must be in 1 .."});
  expect_error(parse({{"tpe_bandwidth", "-1"}}), {"tpe_bandwidth = -1", "must be > 0"});
  expect_error(parse({{"tpe_categorical_prior", "x"}}), {"tpe_categorical_prior = 'x'", "expected a number"});
  expect_error(parse({{"tpe_gammma", "0.1"}}), {"unknown key 'tpe_gammma'"});
  expect_error([] { parse_sweep_config(to_key_values({{"name", "a"}, {"trials", "3"}, {"tpe_gamma", "0.2"}})); },
               {"tpe_* keys set TPE's estimator", "method = random"});
}

}  // namespace
}  // namespace lmsweep::sweep
