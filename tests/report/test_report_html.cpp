// `lmsweep report` through its library: a 12-trial synthetic ASHA sweep with per-class results
// made in the test, the page and every figure written, the data files holding every trial and
// epoch, the page rendered by a real browser (Debian's chromium, headless), and bad input.
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "data/image.h"
#include "db/store.h"
#include "report/report.h"
#include "support/errors.h"  // error_of
#include "sweep/search_space.h"

namespace lmsweep {
namespace {

namespace fs = std::filesystem;
using testing::error_of;

fs::path temp_dir(const std::string& name) {
  const fs::path d = fs::temp_directory_path() / ("lmsweep_test_report_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

std::string read(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

// Data lines of a .tsv (not comments, not the blank lines between gnuplot's blocks).
std::vector<std::vector<std::string>> rows_of(const fs::path& p) {
  std::vector<std::vector<std::string>> rows;
  std::istringstream in(read(p));
  for (std::string line; std::getline(in, line);) {
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> cells;
    std::istringstream l(line);
    for (std::string c; std::getline(l, c, '\t');) cells.push_back(c);
    rows.push_back(cells);
  }
  return rows;
}

constexpr int kClasses = 6;
const std::vector<int64_t> kTrainCounts = {150, 20, 400, 5, 60, 120};  // head: 0, 2, 5; middle: 1, 4; tail: 3

sweep::SearchSpace report_space() {
  return sweep::SearchSpace({sweep::parse_dimension("batch-size", "choice(8, 16, 32)"),
                             sweep::parse_dimension("gamma-neg", "uniform(2, 12)"),
                             sweep::parse_dimension("lambda", "loguniform(0.1, 10)"),
                             sweep::parse_dimension("s", "uniform(1, 20)"),
                             sweep::parse_dimension("loss", "fixed(clip+bal)")});
}

// One epoch of a synthetic LM-CLIP trial: maps rise with the epoch and peak at lambda = 1.
db::EpochRecord synthetic_epoch(int64_t epoch, double lambda, double noise, bool first) {
  db::EpochRecord r;
  r.epoch = epoch;
  const double base = 0.5 + 0.05 * epoch - 0.08 * std::pow(std::log10(lambda), 2) + noise;
  r.map = base;
  r.map_head = base + 0.1;
  r.map_middle = base;
  r.map_tail = base - 0.15 + 0.02 * std::log10(lambda);
  r.map_single = base + 0.02;
  r.map_multi = base - 0.02;
  r.train_loss = 2.0 / epoch;
  r.lr = 1e-5;
  nlohmann::json m = {{"precision", std::vector<double>(kClasses, 0.6)},
                      {"recall", std::vector<double>(kClasses, 0.4)},
                      {"f1", std::vector<double>(kClasses, 0.48)}};
  if (first) {
    m["class_names"] = {"aeroplane", "bicycle", "bird", "boat", "potted plant", "person"};
    m["class_train_count"] = kTrainCounts;
  }
  r.metrics_json = m.dump();
  return r;
}

struct SyntheticSweep {
  fs::path db;
  int64_t epochs = 0;  // recorded, over all trials
  std::vector<int64_t> epochs_of;  // per trial number
};

// 12 trials: 8 completed (6 epochs), 3 pruned at rung 2, 1 failed after 1 epoch.
SyntheticSweep make_sweep(const fs::path& dir) {
  SyntheticSweep s;
  s.db = dir / "sweep.db";
  auto store = db::Store::open(s.db.string());
  db::StudySpec spec;
  spec.name = "voc_synthetic";
  spec.space_json = report_space().canonical();
  spec.method = "tpe";
  spec.seed = 3;
  spec.scheduler = "asha";
  spec.scheduler_json = R"({"grace": 2, "reduction": 2})";
  const auto study = store.create_or_get_study(spec);
  std::mt19937 rng(11);
  std::uniform_real_distribution<double> u(0, 1);
  for (int n = 0; n < 12; ++n) {
    const double lambda = std::pow(10.0, -1 + 2 * u(rng));
    const nlohmann::json params = {{"batch-size", std::vector<int>{8, 16, 32}[n % 3]}, {"gamma-neg", 2 + 10 * u(rng)},
                                   {"lambda", lambda}, {"s", 1 + 19 * u(rng)}, {"loss", "clip+bal"}};
    const auto t = store.add_trial(study.id, n, params.dump(), 100 + n);
    store.start_trial(t.id, 0, "node0");
    const int64_t last = n == 11 ? 1 : (n % 4 == 2 ? 2 : 6);
    const double noise = 0.02 * u(rng);
    for (int64_t e = 1; e <= last; ++e) {
      std::vector<double> ap(kClasses);
      for (int k = 0; k < kClasses; ++k) ap[k] = 0.3 + 0.1 * k + 0.01 * e;
      store.record_epoch(t.id, synthetic_epoch(e, lambda, noise, e == 1), ap);
    }
    s.epochs += last;
    s.epochs_of.push_back(last);
    if (n == 11) store.fail_trial(t.id, "CUDA out of memory");
    else if (last == 2) store.prune_trial(t.id);
    else store.complete_trial(t.id);
  }
  return s;
}

const std::vector<std::string> kFigures = {"sensitivity", "parallel", "curves", "best_so_far",
                                           "classes", "pareto", "importance"};

class ReportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir = temp_dir(::testing::UnitTest::GetInstance()->current_test_info()->name());
    sweep = make_sweep(dir);
  }
  void TearDown() override {
    if (std::getenv("LMSWEEP_TEST_KEEP") == nullptr) fs::remove_all(dir);  // set: look at the report
  }

  report::ReportSummary write(const fs::path& out) {
    auto store = db::Store::open_read_only(sweep.db.string());
    report::ReportOptions o;
    o.out_dir = out.string();
    o.progress = [this](const std::string& line) { progress.push_back(line); };
    return report::write_report(store, o);
  }

  fs::path dir;
  SyntheticSweep sweep;
  std::vector<std::string> progress;
};

TEST_F(ReportTest, WritesEveryFigureWithItsDataAndScript) {
  const fs::path out = dir / "report";
  const auto r = write(out);
  EXPECT_EQ(r.figures, kFigures);
  EXPECT_TRUE(r.skipped.empty()) << r.skipped.front();
  EXPECT_EQ(progress.size(), kFigures.size());  // one line per figure
  EXPECT_EQ(progress.front(), "[1/7] sensitivity");
  const std::string html = read(out / "index.html");
  for (const auto& f : kFigures) {
    for (const char* ext : {".png", ".svg", ".pdf", ".gp"})
      EXPECT_GT(fs::file_size(out / (f + ext)), 200u) << f << ext;
    EXPECT_NE(html.find("id=\"" + f + "\""), std::string::npos) << f;
  }
  EXPECT_EQ(read(out / "sensitivity.png").substr(1, 3), "PNG");
  EXPECT_EQ(read(out / "classes.pdf").substr(0, 4), "%PDF");
  EXPECT_NE(html.find("data:image/png;base64,iVBORw0KGgo"), std::string::npos);  // figures inline
  EXPECT_EQ(html.find("src=\"http"), std::string::npos);                          // nothing fetched
  EXPECT_NE(html.find("Table 3"), std::string::npos);
  EXPECT_NE(html.find("Table 1"), std::string::npos);
  // No staging folder left beside it.
  for (const auto& e : fs::directory_iterator(dir))
    EXPECT_EQ(e.path().filename().string().find(".partial"), std::string::npos) << e.path();
}

TEST_F(ReportTest, DataFilesHoldEveryTrialAndEpoch) {
  const fs::path out = dir / "report";
  write(out);
  // sensitivity / parallel: one row per trial (all 12 recorded map), its number first.
  std::set<std::string> trials;
  for (const auto& row : rows_of(out / "sensitivity.tsv")) trials.insert(row.at(0));
  EXPECT_EQ(trials.size(), 12u);
  EXPECT_EQ(rows_of(out / "parallel.tsv").size(), 12u);
  // curves: every (trial, epoch); the pruned trials' last epochs marked.
  EXPECT_EQ(static_cast<int64_t>(rows_of(out / "curves.tsv").size()), sweep.epochs);
  EXPECT_EQ(rows_of(out / "curves_pruned.tsv").size(), 3u);
  const std::string gp = read(out / "curves.gp");
  EXPECT_NE(gp.find("rung 2"), std::string::npos) << gp.substr(0, 300);  // ASHA grace 2, reduction 2, 6 epochs: 2, 4
  EXPECT_NE(gp.find("rung 4"), std::string::npos);
  // pareto: every (trial, epoch) pair; front rows flagged.
  const auto pareto = rows_of(out / "pareto.tsv");
  EXPECT_EQ(static_cast<int64_t>(pareto.size()), sweep.epochs);
  EXPECT_GE(rows_of(out / "pareto_front.tsv").size(), 1u);
  // best so far: every trial twice (by number, by time); the running best never falls.
  const auto best = rows_of(out / "best_so_far.tsv");
  ASSERT_EQ(best.size(), 24u);
  for (size_t i = 1; i < 12; ++i) EXPECT_GE(std::stod(best[i][2]), std::stod(best[i - 1][2]));
  // classes: the 6 classes by training count, with their groups and names.
  const auto classes = rows_of(out / "classes.tsv");
  ASSERT_EQ(classes.size(), 6u);
  EXPECT_EQ(classes[0][2], "bird");
  EXPECT_EQ(classes[0][4], "head");
  EXPECT_EQ(classes[5][2], "boat");
  EXPECT_EQ(classes[5][4], "tail");
  EXPECT_EQ(classes[3][2], "potted plant");  // a name with a space survives the tab-separated file
  EXPECT_NEAR(std::stod(classes[0][6]), 60.0, 1e-9);  // precision in %
  // importance: the four swept parameters (tests/report/test_importance.cpp checks the ranking),
  // summing to 1.
  const auto imp = rows_of(out / "importance.tsv");
  ASSERT_EQ(imp.size(), 4u);
  double sum = 0;
  for (const auto& row : imp) sum += std::stod(row.at(2));
  EXPECT_NEAR(sum, 1.0, 1e-4);
}

TEST_F(ReportTest, RendersInHeadlessChromium) {
  if (std::system("command -v chromium >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "no chromium on PATH (apt-get install chromium): the page is not rendered";
  const fs::path out = dir / "report";
  write(out);
  const std::string url = "file://" + (out / "index.html").string();
  const std::string flags = "--headless --no-sandbox --disable-gpu --disable-dev-shm-usage --hide-scrollbars "
                            "--virtual-time-budget=10000 ";
  const fs::path dom = dir / "dom.html", shot = dir / "shot.png";
  ASSERT_EQ(std::system(("timeout 90 chromium " + flags + "--dump-dom " + url + " > " + dom.string() +
                         " 2>/dev/null").c_str()), 0);
  const std::string page = read(dom);
  EXPECT_NE(page.find("data-figures=\"7\""), std::string::npos) << page.substr(0, 400);
  EXPECT_NE(page.find("data-figures-loaded=\"7\""), std::string::npos);  // every figure decoded
  ASSERT_EQ(std::system(("timeout 90 chromium " + flags + "--window-size=1400,2400 --screenshot=" + shot.string() +
                         " " + url + " >/dev/null 2>&1").c_str()), 0);
  const RgbImage img = decode_image(shot.string());
  ASSERT_EQ(img.width, 1400);
  // Not blank: a good share of the pixels are not the white background, in many colours.
  int64_t ink = 0;
  std::set<uint32_t> colours;
  for (size_t i = 0; i + 2 < img.pixels.size(); i += 3) {
    const uint8_t r = img.pixels[i], g = img.pixels[i + 1], b = img.pixels[i + 2];
    ink += (r < 200 || g < 200 || b < 200);
    colours.insert((r << 16) | (g << 8) | b);
  }
  EXPECT_GT(ink, img.width * img.height / 100);
  EXPECT_GT(colours.size(), 50u);
}

TEST_F(ReportTest, ReplacesAPreviousReportWhole) {
  const fs::path out = dir / "report";
  fs::create_directories(out);
  std::ofstream(out / "stale.txt") << "from before";
  write(out);
  EXPECT_FALSE(fs::exists(out / "stale.txt"));
  EXPECT_TRUE(fs::exists(out / "index.html"));
}

TEST_F(ReportTest, BadInputIsOneLineAndLeavesNothing) {
  const fs::path out = dir / "out";
  auto store = db::Store::open(sweep.db.string());
  db::StudySpec empty;
  empty.name = "empty";
  empty.space_json = report_space().canonical();
  empty.method = "random";
  store.create_or_get_study(empty);
  db::StudySpec running = empty;
  running.name = "running";
  const auto st = store.create_or_get_study(running);
  const auto t = store.add_trial(st.id, 0, R"({"lambda": 1})", 1);
  store.start_trial(t.id, 0, "node0");

  report::ReportOptions o;
  o.out_dir = out.string();
  o.study = "empty";
  EXPECT_NE(error_of([&] { report::write_report(store, o); }).find("study 'empty' has no trial yet"), std::string::npos);
  o.study = "running";
  EXPECT_NE(error_of([&] { report::write_report(store, o); }).find("no completed trial yet (1 running"),
            std::string::npos);
  o.study = std::nullopt;
  EXPECT_NE(error_of([&] { report::write_report(store, o); }).find("choose one with --study"), std::string::npos);
  o.study = "voc_synthetic";
  o.out_dir = (dir / "no" / "such" / "folder").string();
  EXPECT_NE(error_of([&] { report::write_report(store, o); }).find("does not exist: create it first"),
            std::string::npos);
  o.out_dir = "/proc/lmsweep-report";
  EXPECT_NE(error_of([&] { report::write_report(store, o); }).find("--out /proc/lmsweep-report"), std::string::npos);
  std::ofstream(dir / "a-file") << "x";
  o.out_dir = (dir / "a-file").string();
  EXPECT_NE(error_of([&] { report::write_report(store, o); }).find("exists and is not a folder"), std::string::npos);
  o.out_dir = out.string();
  o.gnuplot = "no-such-gnuplot";
  EXPECT_NE(error_of([&] { report::write_report(store, o); }).find("apt-get install gnuplot-nox"), std::string::npos);
  o.gnuplot = "/bin/false";  // gnuplot failing half-way: nothing is left behind
  EXPECT_NE(error_of([&] { report::write_report(store, o); }).find("failed (exit 1)"), std::string::npos);
  EXPECT_FALSE(fs::exists(out));
  for (const auto& e : fs::directory_iterator(dir))
    EXPECT_EQ(e.path().filename().string().find(".partial"), std::string::npos) << e.path();
}

}  // namespace
}  // namespace lmsweep
