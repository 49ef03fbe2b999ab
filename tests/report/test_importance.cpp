// Tests of parameter importance (report/importance.h, a port of Optuna's PED-ANOVA): a
// synthetic study where one parameter decides the objective is ranked with it first, trials
// other than completed ones do not count, errors name what is wrong, the table/JSON output;
// and the port agrees with Optuna's PedAnovaImportanceEvaluator on the same study (exported
// with export_optuna_journal, read by PyPI's optuna; skipped without it).
#include <cmath>
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "export/optuna_journal.h"
#include "support/synthetic_study.h"
#include "report/importance.h"
#include "support/errors.h"
#include "support/python_tools.h"
#include "support/shared_data.h"

namespace {

namespace fs = std::filesystem;
using lmsweep::db::TrialStatus;
using lmsweep::report::ImportanceOptions;
using lmsweep::report::param_importances;
using lmsweep::testing::error_of;
using nlohmann::json;

class ImportanceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = lmsweep::testing::temp_dir(std::string("importance_") + info->name());
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  // `n` completed trials of optuna_test_space() (seed 11) with two epochs each: map peaks at
  // gamma-neg = 7 (the dominant parameter), lambda moves it a little, plus noise; train_loss
  // is decided by lambda. `extra`: also pruned, failed and running trials with extreme values.
  lmsweep::report::StudyData dominated_study(int n, bool extra = false, const std::string& db = "sweep.db") {
    auto store = lmsweep::db::Store::open((dir_ / db).string());
    const auto study = lmsweep::testing::make_test_study(store, "dominated", lmsweep::testing::optuna_test_space());
    std::mt19937 rng(11);
    std::uniform_real_distribution<double> u(0, 1);
    std::normal_distribution<double> noise(0, 0.005);
    const int batch[] = {8, 16, 32};
    for (int64_t i = 0; i < n + (extra ? 6 : 0); ++i) {
      lmsweep::testing::SyntheticTrial t;
      const double gamma = 2 + 10 * u(rng), lambda = 0.1 * std::pow(100.0, u(rng));
      t.params = {{"batch-size", batch[rng() % 3]},
                  {"gamma-neg", gamma},
                  {"lambda", lambda},
                  {"warmup", static_cast<int>(rng() % 6)},
                  {"loss", "clip+bal"}};
      const double map = 0.8 - 0.5 * std::pow((gamma - 7) / 5, 2) + 0.01 * std::log10(lambda) + noise(rng);
      const double loss = 0.5 + 0.3 * std::pow(std::log10(lambda) - 0.5, 2) + noise(rng);
      const bool completed = i < n;
      t.status = completed ? TrialStatus::Completed : (i % 3 == 0 ? TrialStatus::Pruned : i % 3 == 1 ? TrialStatus::Failed : TrialStatus::Running);
      // A trial that did not complete looks excellent, with the dominant parameter far from 7.
      t.epochs = {lmsweep::testing::test_epoch(0, completed ? map - 0.1 : 0.99, loss + 0.1),
                  lmsweep::testing::test_epoch(1, completed ? map : 0.99, completed ? loss : 0.0)};
      lmsweep::testing::add_synthetic_trial(store, study.id, i, t);
    }
    return lmsweep::report::load_study(store, std::nullopt);
  }

  fs::path dir_;
};

double sum(const std::vector<lmsweep::report::ParamImportance>& v) {
  double s = 0;
  for (const auto& p : v) s += p.importance;
  return s;
}

TEST_F(ImportanceTest, RanksTheDominantParameterFirst) {
  const auto ranked = param_importances(dominated_study(80));
  ASSERT_EQ(ranked.size(), 4u) << "the fixed `loss` is not ranked";
  EXPECT_EQ(ranked[0].param, "gamma-neg");
  EXPECT_GT(ranked[0].importance, 0.5) << lmsweep::report::importance_report(ranked, "table");
  EXPECT_NEAR(sum(ranked), 1.0, 1e-12);
  for (size_t i = 1; i < ranked.size(); ++i) {
    EXPECT_GE(ranked[i - 1].importance, ranked[i].importance);
    EXPECT_GE(ranked[i].importance, 0.0);
  }
}

TEST_F(ImportanceTest, MinimisedObjectiveRanksItsOwnParameter) {
  ImportanceOptions o;
  o.objective = "train_loss";  // minimised: decided by lambda
  const auto ranked = param_importances(dominated_study(80), o);
  ASSERT_EQ(ranked.size(), 4u);
  EXPECT_EQ(ranked[0].param, "lambda") << lmsweep::report::importance_report(ranked, "table");
}

TEST_F(ImportanceTest, OnlyCompletedTrialsCount) {
  const auto plain = param_importances(dominated_study(60));
  const auto with_others = param_importances(dominated_study(60, /*extra=*/true, "extra.db"));
  ASSERT_EQ(plain.size(), with_others.size());
  for (size_t i = 0; i < plain.size(); ++i) {
    EXPECT_EQ(plain[i].param, with_others[i].param);
    EXPECT_DOUBLE_EQ(plain[i].importance, with_others[i].importance);
  }
}

TEST_F(ImportanceTest, UnnormalisedImportancesAreTheDivergences) {
  ImportanceOptions o;
  o.normalize = false;
  const auto raw = param_importances(dominated_study(80), o);
  const auto normalised = param_importances(dominated_study(80, false, "again.db"));
  ASSERT_EQ(raw.size(), normalised.size());
  EXPECT_GT(sum(raw), 0.0);
  for (size_t i = 0; i < raw.size(); ++i) EXPECT_NEAR(raw[i].importance / sum(raw), normalised[i].importance, 1e-12);
}

TEST_F(ImportanceTest, Errors) {
  const auto data = dominated_study(80);
  ImportanceOptions o;
  o.objective = "mapp";
  const auto unknown = error_of([&] { param_importances(data, o); });
  EXPECT_NE(unknown.find("unknown objective 'mapp'"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("dominated"), std::string::npos) << unknown;

  auto store = lmsweep::db::Store::open((dir_ / "small.db").string());
  const auto study = lmsweep::testing::make_test_study(store, "small", lmsweep::testing::optuna_test_space());
  lmsweep::testing::SyntheticTrial t;
  t.params = {{"batch-size", 8}, {"gamma-neg", 3.0}, {"lambda", 1.0}, {"warmup", 1}, {"loss", "clip+bal"}};
  t.status = TrialStatus::Failed;
  lmsweep::testing::add_synthetic_trial(store, study.id, 0, t);
  const auto none = error_of([&] { param_importances(lmsweep::report::load_study(store, std::nullopt)); });
  EXPECT_NE(none.find("no completed trial recorded map"), std::string::npos) << none;

  t.status = TrialStatus::Completed;
  t.epochs = {lmsweep::testing::test_epoch(0, 0.5, 1.0)};
  lmsweep::testing::add_synthetic_trial(store, study.id, 1, t);
  const auto few = error_of([&] { param_importances(lmsweep::report::load_study(store, std::nullopt)); });
  EXPECT_NE(few.find("1 completed trial(s)"), std::string::npos) << few;
  EXPECT_NE(few.find("at least 2"), std::string::npos) << few;

  auto one_store = lmsweep::db::Store::open((dir_ / "one.db").string());
  const lmsweep::sweep::SearchSpace one({lmsweep::sweep::parse_dimension("lambda", "uniform(0, 1)"),
                                         lmsweep::sweep::parse_dimension("loss", "fixed(clip)"),
                                         lmsweep::sweep::parse_dimension("warmup", "choice(3)")});
  lmsweep::testing::make_test_study(one_store, "one", one);
  const auto dims = error_of([&] { param_importances(lmsweep::report::load_study(one_store, std::nullopt)); });
  EXPECT_NE(dims.find("sweeps 1 dimension(s)"), std::string::npos) << dims;
}

TEST_F(ImportanceTest, TableAndJsonReports) {
  const std::vector<lmsweep::report::ParamImportance> ranked = {{"gamma-neg", 0.75}, {"lambda", 0.2}, {"warmup", 0.05}};
  const json j = json::parse(lmsweep::report::importance_report(ranked, "json"));
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 3u);
  EXPECT_EQ(j[0], json({{"param", "gamma-neg"}, {"importance", 0.75}}));
  EXPECT_EQ(j[2]["param"], "warmup");
  const std::string table = lmsweep::report::importance_report(ranked, "table");
  std::istringstream lines(table);
  std::string header, first;
  std::getline(lines, header);
  std::getline(lines, first);
  EXPECT_NE(header.find("parameter"), std::string::npos) << table;
  EXPECT_NE(header.find("importance"), std::string::npos) << table;
  EXPECT_EQ(first.rfind("gamma-neg", 0), 0u) << table;
  EXPECT_NE(first.find("0.7500"), std::string::npos) << table;
  const auto bad = error_of([&] { lmsweep::report::importance_report(ranked, "csv"); });
  EXPECT_NE(bad.find("--format csv"), std::string::npos) << bad;
}

// The port against Optuna itself: same study through the journal, same evaluator defaults.
TEST_F(ImportanceTest, AgreesWithOptunasPedAnova) {
  const std::string python = lmsweep::testing::tools_python();
  LMSWEEP_SKIP_WITHOUT_MODULE(python, "optuna.importance._ped_anova",
                              "scripts/setup.sh --with-test-deps (PyPI's optuna >= 3.6 in the tools venv)");
  for (const char* objective : {"map", "train_loss"}) {
    auto data = dominated_study(80, /*extra=*/true, std::string(objective) + ".db");
    if (std::string(objective) == "train_loss") data.objectives = {"train_loss"};  // a minimised study
    ImportanceOptions o;
    const auto ours = param_importances(data, o);
    const std::string journal = (dir_ / (std::string(objective) + ".log")).string();
    lmsweep::export_optuna_journal(data, journal);
    const std::string script = (fs::path(__FILE__).parent_path() / "optuna_importance.py").string();
    const auto run = lmsweep::testing::run_python(python, script + " '" + journal + "' dominated");
    ASSERT_EQ(run.status, 0) << run.output;
    std::istringstream lines(run.output);
    std::string line, last;
    while (std::getline(lines, line))
      if (!line.empty()) last = line;
    const json theirs = json::parse(last);
    const json& imp = theirs["importances"];
    ASSERT_EQ(imp.size(), ours.size()) << run.output;
    std::string best;
    double best_value = -1, max_diff = 0;
    for (const auto& [param, value] : imp.items()) {
      if (value.get<double>() > best_value) best = param, best_value = value.get<double>();
    }
    EXPECT_EQ(ours[0].param, best) << objective << ": Optuna " << imp.dump();
    for (const auto& p : ours) {
      ASSERT_TRUE(imp.contains(p.param)) << p.param;
      max_diff = std::max(max_diff, std::abs(imp[p.param].get<double>() - p.importance));
    }
    // An exact port: only floating-point rounding apart (Optuna sums in log space).
    EXPECT_LT(max_diff, 1e-9) << objective << ": ours " << lmsweep::report::importance_report(ours, "json")
                              << " Optuna " << imp.dump();
    std::cout << "[ importance ] " << objective << " (optuna " << theirs.value("optuna", "?")
              << "): max |ours - Optuna's| = " << max_diff << "\n";
  }
}

}  // namespace
