// Tests of the Optuna journal export (export/optuna_journal.h): a synthetic study written with
// db::Store, exported, then read back by Debian's Optuna 3.1 (/usr/bin/python3) and by PyPI's
// current Optuna (tools_python()) through tests/export/read_optuna_journal.py, compared with
// the database trial by trial. Each reader is its own test and skips without its optuna.
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "export/optuna_journal.h"
#include "support/synthetic_study.h"
#include "report/study_data.h"
#include "support/errors.h"
#include "support/python_tools.h"
#include "support/shared_data.h"

namespace {

namespace fs = std::filesystem;
using lmsweep::db::TrialStatus;
using lmsweep::testing::error_of;
using nlohmann::json;

const std::string kPipHint = "scripts/setup.sh --with-test-deps (PyPI's optuna in the tools venv)";
const std::string kAptHint = "apt-get install python3-optuna";

std::string script(const char* name) { return (fs::path(__FILE__).parent_path() / name).string(); }

// The map of trial `number` at `epoch`: best at epoch 1, so that a completed trial's value (best
// epoch) and a pruned one's (last epoch, as Optuna records it) differ.
double test_map(int64_t number, int64_t epoch) {
  static const double shape[] = {0.10, 0.25, 0.18};
  return 0.2 + 0.03 * static_cast<double>(number) + shape[epoch % 3];
}

class OptunaJournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = lmsweep::testing::temp_dir(std::string("optuna_") + info->name());
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // 12 trials: 4 completed, 2 pruned, 2 failed (one before starting), 1 running, 2 pending,
  // 1 interrupted; random points of optuna_test_space() (seed 42).
  lmsweep::report::StudyData single_objective_study() {
    auto store = lmsweep::db::Store::open((dir_ / "sweep.db").string());
    const auto space = lmsweep::testing::optuna_test_space();
    const auto study = lmsweep::testing::make_test_study(store, "voc_sweep", space);
    const TrialStatus statuses[] = {TrialStatus::Completed, TrialStatus::Pruned,  TrialStatus::Completed,
                                    TrialStatus::Failed,    TrialStatus::Running, TrialStatus::Pending,
                                    TrialStatus::Completed, TrialStatus::Pruned,  TrialStatus::Interrupted,
                                    TrialStatus::Failed,    TrialStatus::Completed, TrialStatus::Pending};
    std::mt19937 rng(42);
    std::uniform_real_distribution<double> u(0, 1);
    const int batch[] = {8, 16, 32};
    for (int64_t i = 0; i < 12; ++i) {
      lmsweep::testing::SyntheticTrial t;
      t.status = statuses[i];
      t.params = {{"batch-size", batch[rng() % 3]},
                  {"gamma-neg", 2 + 10 * u(rng)},
                  {"lambda", 0.1 * std::pow(100.0, u(rng))},
                  {"warmup", static_cast<int>(rng() % 6)},
                  {"loss", "clip+bal"}};
      const int64_t n_epochs = t.status == TrialStatus::Pending  ? 0
                               : i == 3                          ? 0  // failed before it started
                               : t.status == TrialStatus::Running ? 1
                                                                  : 3;
      for (int64_t e = 0; e < n_epochs; ++e)
        t.epochs.push_back(lmsweep::testing::test_epoch(e, test_map(i, e), 1.0 - 0.1 * e - 0.01 * i));
      lmsweep::testing::add_synthetic_trial(store, study.id, i, t);
    }
    return lmsweep::report::load_study(store, std::nullopt);
  }

  lmsweep::report::StudyData two_objective_study() {
    auto store = lmsweep::db::Store::open((dir_ / "multi.db").string());
    const auto space = lmsweep::testing::optuna_test_space();
    const auto study = lmsweep::testing::make_test_study(store, "pareto", space, {"map", "train_loss"});
    for (int64_t i = 0; i < 4; ++i) {
      lmsweep::testing::SyntheticTrial t;
      t.status = i == 3 ? TrialStatus::Pruned : TrialStatus::Completed;
      t.params = {{"batch-size", 16}, {"gamma-neg", 3.5 + i}, {"lambda", 1.0}, {"warmup", i}, {"loss", "clip+bal"}};
      for (int64_t e = 0; e < 3; ++e)
        t.epochs.push_back(lmsweep::testing::test_epoch(e, test_map(i, e), 0.9 - 0.2 * e + 0.05 * i));
      lmsweep::testing::add_synthetic_trial(store, study.id, i, t);
    }
    return lmsweep::report::load_study(store, std::nullopt);
  }

  // Exports `data` and reads it back with `python`; the script's last output line is JSON.
  json read_back(const lmsweep::report::StudyData& data, const std::string& python) {
    const std::string journal = (dir_ / "journal.log").string();
    lmsweep::export_optuna_journal(data, journal);
    const auto run = lmsweep::testing::run_python(python, script("read_optuna_journal.py") + " '" + journal + "' '" +
                                                              data.study.name + "'");
    EXPECT_EQ(run.status, 0) << run.output;
    std::istringstream lines(run.output);
    std::string line, last;
    while (std::getline(lines, line))
      if (!line.empty()) last = line;
    const json out = json::parse(last, nullptr, false);
    EXPECT_FALSE(out.is_discarded()) << run.output;
    return out;
  }

  fs::path dir_;
};

std::string optuna_state(TrialStatus s) {
  switch (s) {
    case TrialStatus::Completed: return "COMPLETE";
    case TrialStatus::Pruned: return "PRUNED";
    case TrialStatus::Running: return "RUNNING";
    case TrialStatus::Pending: return "WAITING";
    default: return "FAIL";  // failed, interrupted
  }
}

void expect_distributions(const json& d) {
  EXPECT_EQ(d.size(), 4u) << d.dump();  // the fixed `loss` is left out
  EXPECT_EQ(d["batch-size"]["type"], "CategoricalDistribution");
  EXPECT_EQ(d["batch-size"]["choices"], json::array({8, 16, 32}));
  EXPECT_EQ(d["gamma-neg"]["type"], "FloatDistribution");
  EXPECT_EQ(d["gamma-neg"]["low"], 2.0);
  EXPECT_EQ(d["gamma-neg"]["high"], 12.0);
  EXPECT_EQ(d["gamma-neg"]["log"], false);
  EXPECT_EQ(d["lambda"]["type"], "FloatDistribution");
  EXPECT_EQ(d["lambda"]["low"], 0.1);
  EXPECT_EQ(d["lambda"]["high"], 10.0);
  EXPECT_EQ(d["lambda"]["log"], true);
  EXPECT_EQ(d["warmup"]["type"], "IntDistribution");
  EXPECT_EQ(d["warmup"]["low"], 0);
  EXPECT_EQ(d["warmup"]["high"], 5);
  EXPECT_EQ(d["warmup"]["step"], 1);
}

// The trial's value as the test expects it: completed -> its best map, pruned -> its last.
json expected_value(const lmsweep::report::TrialData& t) {
  if (t.epochs.empty()) return nullptr;
  if (t.info.status == TrialStatus::Pruned) return *t.epochs.back().map;
  if (t.info.status != TrialStatus::Completed) return nullptr;
  double best = *t.epochs.front().map;
  for (const auto& e : t.epochs) best = std::max(best, *e.map);
  return best;
}

void expect_time(const json& got, const std::optional<double>& want, const std::string& what) {
  if (!want) {
    EXPECT_TRUE(got.is_null()) << what << ": " << got.dump();
    return;
  }
  ASSERT_TRUE(got.is_number()) << what << ": " << got.dump();
  EXPECT_NEAR(got.get<double>(), *want, 2e-6) << what;  // microseconds in the journal
}

void expect_trial(const lmsweep::report::TrialData& t, const json& o) {
  const std::string what = "trial " + std::to_string(t.info.number);
  EXPECT_EQ(o["number"], t.info.number) << what;
  EXPECT_EQ(o["state"], optuna_state(t.info.status)) << what;
  json params = t.params;
  params.erase("loss");
  EXPECT_EQ(o["params"], params) << what;
  expect_distributions(o["distributions"]);
  EXPECT_EQ(o["value"], expected_value(t)) << what;
  json curve = json::object();
  for (const auto& e : t.epochs) curve[std::to_string(e.epoch)] = *e.map;
  EXPECT_EQ(o["intermediate_values"], curve) << what;
  const bool waiting = t.info.status == TrialStatus::Pending;
  expect_time(o["datetime_start"], waiting ? std::nullopt : t.info.started_at, what + " start");
  const bool finished = !waiting && t.info.status != TrialStatus::Running;
  expect_time(o["datetime_complete"], finished ? t.info.finished_at : std::nullopt, what + " complete");
  EXPECT_EQ(o["user_attrs"]["lmsweep_trial"], t.info.number) << what;
  EXPECT_EQ(o["user_attrs"]["lmsweep_seed"], t.info.seed) << what;
  EXPECT_EQ(o["user_attrs"]["lmsweep_status"], std::string(lmsweep::db::to_string(t.info.status))) << what;
  EXPECT_EQ(o["user_attrs"].value("host", ""), t.info.host) << what;
  EXPECT_EQ(o["user_attrs"].value("error", ""), t.info.error) << what;
}

void expect_single_objective(const lmsweep::report::StudyData& data, const json& out) {
  ASSERT_TRUE(out.is_object());
  EXPECT_EQ(out["study_name"], "voc_sweep");
  EXPECT_EQ(out["directions"], json::array({"MAXIMIZE"}));
  EXPECT_EQ(out["user_attrs"]["lmsweep_fixed_params"], json({{"loss", "clip+bal"}}));
  ASSERT_EQ(out["trials"].size(), 12u) << out.dump();
  for (size_t i = 0; i < data.trials.size(); ++i) expect_trial(data.trials[i], out["trials"][i]);
}

void expect_two_objectives(const lmsweep::report::StudyData& data, const json& out) {
  ASSERT_TRUE(out.is_object());
  EXPECT_EQ(out["directions"], json::array({"MAXIMIZE", "MINIMIZE"}));
  ASSERT_EQ(out["trials"].size(), 4u);
  for (size_t i = 0; i < 4; ++i) {
    const auto& t = data.trials[i];
    const auto& o = out["trials"][i];
    EXPECT_EQ(o["intermediate_values"], json::object()) << "Optuna has none for multi-objective studies";
    EXPECT_EQ(o["user_attrs"]["lmsweep_intermediate_values"]["map"].size(), 3u);
    if (t.info.status == TrialStatus::Pruned) {
      EXPECT_EQ(o["state"], "PRUNED");
      EXPECT_TRUE(o["values"].is_null()) << o.dump();
      continue;
    }
    const auto& best = t.epochs[1];  // test_map peaks at epoch 1
    EXPECT_EQ(o["state"], "COMPLETE");
    EXPECT_EQ(o["values"], json::array({*best.map, *best.train_loss})) << o.dump();
  }
}

TEST_F(OptunaJournalTest, WritesOneStudyAndOneCreateTrialPerTrial) {
  const auto data = single_objective_study();
  const std::string text = lmsweep::optuna_journal_text(data);
  std::istringstream lines(text);
  std::string line;
  std::vector<json> ops;
  while (std::getline(lines, line)) ops.push_back(json::parse(line));
  ASSERT_FALSE(ops.empty());
  EXPECT_EQ(ops.front()["op_code"], 0);
  EXPECT_EQ(ops.front()["directions"], json::array({2}));
  int trials = 0;
  for (const auto& op : ops) {
    EXPECT_EQ(op["worker_id"], "lmsweep-export");
    if (op["op_code"] != 4) continue;
    ++trials;
    ASSERT_TRUE(op.contains("datetime_start")) << "replay reads it unconditionally";
    EXPECT_FALSE(op.contains("datetime_complete") && op["datetime_complete"].is_null()) << op.dump();
    EXPECT_FALSE(!op["value"].is_null() && !op["values"].is_null()) << "FrozenTrial takes value or values";
    // distributions are JSON strings (distribution_to_json); a categorical param is its index.
    EXPECT_TRUE(op["distributions"]["batch-size"].is_string());
    EXPECT_TRUE(op["params"]["batch-size"].is_number_integer());
    EXPECT_LT(op["params"]["batch-size"].get<int>(), 3);
  }
  EXPECT_EQ(trials, 12);
}

TEST_F(OptunaJournalTest, ReadByDebianOptuna31) {
  LMSWEEP_SKIP_WITHOUT_MODULE(lmsweep::testing::debian_python(), "optuna", kAptHint);
  const auto data = single_objective_study();
  const json out = read_back(data, lmsweep::testing::debian_python());
  EXPECT_EQ(out.value("optuna", "").substr(0, 2), "3.");
  expect_single_objective(data, out);
}

TEST_F(OptunaJournalTest, ReadByPypiOptuna) {
  LMSWEEP_SKIP_WITHOUT_MODULE(lmsweep::testing::tools_python(), "optuna", kPipHint);
  const auto data = single_objective_study();
  expect_single_objective(data, read_back(data, lmsweep::testing::tools_python()));
}

TEST_F(OptunaJournalTest, TwoObjectivesReadByDebianOptuna31) {
  LMSWEEP_SKIP_WITHOUT_MODULE(lmsweep::testing::debian_python(), "optuna", kAptHint);
  const auto data = two_objective_study();
  expect_two_objectives(data, read_back(data, lmsweep::testing::debian_python()));
}

TEST_F(OptunaJournalTest, TwoObjectivesReadByPypiOptuna) {
  LMSWEEP_SKIP_WITHOUT_MODULE(lmsweep::testing::tools_python(), "optuna", kPipHint);
  const auto data = two_objective_study();
  expect_two_objectives(data, read_back(data, lmsweep::testing::tools_python()));
}

TEST_F(OptunaJournalTest, RefusesAnUnwritableFileAndLeavesNothing) {
  const auto data = single_objective_study();
  const std::string missing = (dir_ / "no_such_folder" / "journal.log").string();
  const std::string message = error_of([&] { lmsweep::export_optuna_journal(data, missing); });
  EXPECT_NE(message.find(missing), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << "one line: " << message;
  EXPECT_FALSE(fs::exists(dir_ / "no_such_folder"));
  const std::string folder = error_of([&] { lmsweep::export_optuna_journal(data, dir_.string()); });
  EXPECT_NE(folder.find("is a folder"), std::string::npos) << folder;
  // A previous journal is replaced whole, and no .tmp stays behind.
  const std::string journal = (dir_ / "j.log").string();
  std::ofstream(journal) << "old\n";
  lmsweep::export_optuna_journal(data, journal);
  std::ifstream in(journal);
  std::string first;
  std::getline(in, first);
  EXPECT_EQ(json::parse(first)["op_code"], 0);
  EXPECT_FALSE(fs::exists(journal + ".tmp"));
}

TEST_F(OptunaJournalTest, RefusesAValueThatIsNotAChoice) {
  auto store = lmsweep::db::Store::open((dir_ / "bad.db").string());
  const auto study = lmsweep::testing::make_test_study(store, "bad", lmsweep::testing::optuna_test_space());
  lmsweep::testing::SyntheticTrial t;
  t.params = {{"batch-size", 12}, {"gamma-neg", 3.0}, {"lambda", 1.0}, {"warmup", 1}, {"loss", "clip+bal"}};
  t.epochs = {lmsweep::testing::test_epoch(0, 0.5, 1.0)};
  lmsweep::testing::add_synthetic_trial(store, study.id, 0, t);
  const auto data = lmsweep::report::load_study(store, std::nullopt);
  const std::string out = (dir_ / "bad.log").string();
  const std::string message = error_of([&] { lmsweep::export_optuna_journal(data, out); });
  EXPECT_NE(message.find("batch-size = 12"), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(out));
}

}  // namespace
