// `lmsweep sweep --tensorboard DIR`: the coordinator writes the event files while the sweep
// runs (fake trials over MPI, ASHA pruning, one trial failed by LMSWEEP_FAULT), and the
// `tensorboard` package reads them as the database says: every trial's epochs, parameters and
// status (read_tensorboard.py). Also: an unwritable DIR stops the sweep before any trial.
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "db/store.h"
#include "export/tensorboard/study_writer.h"
#include "support/python_tools.h"
#include "support/shared_data.h"
#include "support/sweep_process.h"

namespace {

namespace fs = std::filesystem;
using namespace lmsweep::testing::sweep_process;
namespace tb = lmsweep::tensorboard;

// What read_tensorboard.py must find: each trial that ran, as the database holds it.
nlohmann::json expected_runs(const fs::path& db, const std::string& study_name) {
  auto store = lmsweep::db::Store::open_read_only(db.string());
  const auto study = store.find_study(study_name);
  nlohmann::json runs = nlohmann::json::object();
  if (!study) return runs;
  for (const auto& t : store.trials(study->id)) {
    if (t.status == lmsweep::db::TrialStatus::Pending) continue;
    auto& r = runs[tb::trial_run_name(t.number)];
    r = {{"params", nlohmann::json::parse(t.params_json)},
         {"status", std::string(lmsweep::db::to_string(t.status))},
         {"scalars", nlohmann::json::object()}};
    for (const auto& e : store.epochs(t.id))
      for (const auto& [tag, v] : tb::epoch_scalars(e)) r["scalars"][tag].push_back({e.epoch, v});
  }
  return runs;
}

TEST(TensorBoardLive, SweepWritesWhatTheDatabaseHolds) {
  const std::string python = lmsweep::testing::tools_python();
  LMSWEEP_SKIP_WITHOUT_MODULE(python, "tensorboard",
                              "scripts/setup.sh --with-test-deps (PyPI's tensorboard in the tools venv)");
  const auto dir = lmsweep::testing::temp_dir("tb_live");
  write(dir / "s.ini", fake_config("live", "random", 6, "scheduler = asha\ngrace = 1\nreduction = 2\n",
                                   "batch-size = choice(8, 16, 32)\nlambda = loguniform(0.1, 10)\n", 4));
  const auto r = run("cd " + dir.string() + " && LMSWEEP_FAULT=throw:trial=2:rank=0:step=1 " + mpirun(3) + kExe +
                     " sweep --config s.ini --db s.db --fake-epoch-seconds 0.02 --tensorboard tb");
  ASSERT_EQ(r.status, 0) << r.output;
  const auto rows = trials(dir / "s.db", "live");
  ASSERT_EQ(rows.size(), 6u);
  EXPECT_EQ(rows.at(2).status, "failed");
  EXPECT_GE(count_status(rows, "pruned"), 1) << r.output;
  const auto runs = expected_runs(dir / "s.db", "live");
  std::ofstream(dir / "expected.json") << nlohmann::json{{"runs", runs}}.dump(1);
  const auto py = lmsweep::testing::run_python(python, std::string(LMSWEEP_READ_TENSORBOARD_PY) + " " +
                                                           (dir / "tb").string() + " " +
                                                           (dir / "expected.json").string());
  EXPECT_EQ(py.status, 0) << py.output;
  EXPECT_NE(py.output.find("ok: 6 sessions"), std::string::npos) << py.output;
}

TEST(TensorBoardLive, UnwritableFolderStopsTheSweepBeforeAnyTrial) {
  const auto dir = lmsweep::testing::temp_dir("tb_live_bad");
  write(dir / "s.ini", fake_config("live", "random", 2, "", "lambda = loguniform(0.1, 10)\n", 1));
  write(dir / "a_file", "x");
  const auto r = run("cd " + dir.string() + " && " + mpirun(2) + kExe +
                     " sweep --config s.ini --db s.db --fake-epoch-seconds 0 --tensorboard a_file/tb");
  EXPECT_NE(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("--tensorboard a_file/tb: cannot create the folder"), std::string::npos) << r.output;
  for (const auto& [k, t] : trials(dir / "s.db", "live")) EXPECT_EQ(t.status, "pending") << "trial " << k;
}

}  // namespace
