// What `best` prints, from a database made in the test: fields with commas, quotes and `|`
// survive CSV (RFC 4180 quoting) and markdown (escaped pipes) intact.
#include <filesystem>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

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
