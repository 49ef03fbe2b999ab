// What `best` prints, from a database made in the test: fields with commas, quotes and `|`
// survive CSV (RFC 4180 quoting) and markdown (escaped pipes) intact.
#include <algorithm>
#include <filesystem>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "db/store.h"
#include "launcher/report.h"
#include "support/shared_data.h"

namespace fs = std::filesystem;
using namespace lmsweep;

namespace {

// A study named `name` with one completed trial whose parameter `prompt` is `prompt`.
db::Store store_with(const fs::path& path, const std::string& name, const std::string& prompt) {
  db::Store store = db::Store::open(path.string());
  db::StudySpec spec;
  spec.name = name;
  spec.method = "random";
  spec.space_json = R"j({"prompt": {"type": "choice", "values": ["a"]}})j";
  const auto study = store.create_or_get_study(spec);
  const auto trial = store.add_trial(study.id, 0, nlohmann::json{{"prompt", prompt}}.dump(), 1);
  store.start_trial(trial.id, 0, "host");
  db::EpochRecord r;
  r.epoch = 1;
  r.map = 0.5;
  r.map_head = 0.6;
  r.map_middle = 0.5;
  r.map_tail = 0.4;
  store.record_epoch(trial.id, r, {});
  store.complete_trial(trial.id);
  return store;
}

// Splits one CSV record (RFC 4180).
std::vector<std::string> parse_csv_line(const std::string& line) {
  std::vector<std::string> out(1);
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted && c == '"' && i + 1 < line.size() && line[i + 1] == '"') out.back() += '"', ++i;
    else if (c == '"') quoted = !quoted;
    else if (c == ',' && !quoted) out.emplace_back();
    else out.back() += c;
  }
  return out;
}

}  // namespace

TEST(BestReport, CsvQuotesCommasAndQuotes) {
  const auto dir = lmsweep::testing::temp_dir("report_csv");
  auto store = store_with(dir / "s.db", "voc, \"vit\"", "a photo, of a \"");
  cli::BestOptions o;
  o.format = "csv";
  std::istringstream csv(cli::best_report(store, o));
  std::string header, row;
  ASSERT_TRUE(std::getline(csv, header));
  ASSERT_TRUE(std::getline(csv, row));
  const auto h = parse_csv_line(header), cells = parse_csv_line(row);
  ASSERT_EQ(h.size(), cells.size()) << row;
  EXPECT_EQ(cells[0], "voc, \"vit\"");
  EXPECT_EQ(cells.back(), "a photo, of a \"");
  fs::remove_all(dir);
}

TEST(BestReport, MarkdownEscapesPipes) {
  const auto dir = lmsweep::testing::temp_dir("report_md");
  auto store = store_with(dir / "s.db", "a|b", "x|y");
  cli::BestOptions o;
  o.format = "markdown";
  const std::string md = cli::best_report(store, o);
  EXPECT_NE(md.find("a\\|b"), std::string::npos) << md;
  EXPECT_NE(md.find("x\\|y"), std::string::npos) << md;
  // Every table row has as many cell separators as its header.
  std::istringstream lines(md);
  std::string line;
  int rows = 0;
  size_t expected = 0;
  while (std::getline(lines, line)) {
    if (line.empty() || line[0] != '|') {
      expected = 0;
      continue;
    }
    size_t bars = 0;
    for (size_t i = 0; i < line.size(); ++i) bars += line[i] == '|' && (i == 0 || line[i - 1] != '\\');
    if (expected == 0) expected = bars;
    EXPECT_EQ(bars, expected) << line;
    ++rows;
  }
  EXPECT_GT(rows, 6);
  fs::remove_all(dir);
}

// best --pareto: the (trial, epoch) pairs of a study no other beats in both map_head and
// map_tail, checked against the definition over every recorded epoch; the hypervolume line.
TEST(BestReport, ParetoFrontIsTheNonDominatedEpochs) {
  const auto dir = lmsweep::testing::temp_dir("report_pareto");
  db::Store store = db::Store::open((dir / "s.db").string());
  db::StudySpec spec;
  spec.name = "front";
  spec.method = "random";
  spec.space_json = R"j({"lambda": {"dist": "uniform", "low": 0, "high": 1}})j";
  const auto study = store.create_or_get_study(spec);
  struct Epoch {
    int64_t trial, epoch;
    double head, tail;
  };
  std::vector<Epoch> epochs;
  uint64_t state = 12345;
  auto next = [&] {  // a small LCG: deterministic values in [0, 1)
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<double>(state >> 11) / 9007199254740992.0;
  };
  for (int64_t k = 0; k < 6; ++k) {
    const auto t = store.add_trial(study.id, k, nlohmann::json{{"lambda", 0.1 * static_cast<double>(k)}}.dump(), 1);
    store.start_trial(t.id, 0, "host");
    for (int64_t e = 1; e <= 4; ++e) {
      db::EpochRecord r;
      r.epoch = e;
      r.map_head = next();
      r.map_tail = std::clamp(1 - *r.map_head + 0.3 * (next() - 0.5), 0.0, 1.0);  // a trade-off, as the paper's
      epochs.push_back({k, e, *r.map_head, *r.map_tail});
      store.record_epoch(t.id, r, {});
    }
    store.complete_trial(t.id);
  }
  std::set<std::pair<int64_t, int64_t>> expected;
  for (const auto& a : epochs) {
    bool dominated = false;
    for (const auto& b : epochs)
      dominated = dominated || (b.head >= a.head && b.tail >= a.tail && (b.head > a.head || b.tail > a.tail));
    if (!dominated) expected.insert({a.trial, a.epoch});
  }
  cli::BestOptions o;
  o.pareto = true;
  o.format = "json";
  const auto j = nlohmann::json::parse(cli::best_report(store, o));
  std::set<std::pair<int64_t, int64_t>> got;
  double previous_head = 2;
  for (const auto& row : j) {
    got.insert({row["trial"].get<int64_t>(), row["epoch"].get<int64_t>()});
    EXPECT_TRUE(row.contains("params") && row.contains("map_head") && row.contains("map_tail")) << row.dump();
    EXPECT_LE(row["map_head"].get<double>(), previous_head) << "best first by the first objective";
    previous_head = row["map_head"].get<double>();
  }
  EXPECT_EQ(got, expected);
  EXPECT_GE(expected.size(), 2u);
  o.format = "table";
  const std::string table = cli::best_report(store, o);
  EXPECT_NE(table.find("Pareto front of map_head / map_tail"), std::string::npos) << table;
  EXPECT_NE(table.find("hypervolume of 'front'"), std::string::npos) << table;
  o.objectives = {"map_head", "train_loss"};
  try {
    cli::best_report(store, o);
    ADD_FAILURE() << "train_loss accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'train_loss' is minimised"), std::string::npos) << e.what();
  }
}
