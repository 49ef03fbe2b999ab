#pragma once
// `lmsweep report`: one HTML page of a study that opens offline (figures inline as PNG), with
// the paper's Table 3 (best hyperparameters) and Table 1 (the best trial's mAP total / head /
// middle / tail) layouts, status counts, the top trials, and the figures of report/figures.h,
// each also as PNG, SVG and PDF next to its data file and gnuplot script. Torch-free.
//
//   auto store = db::Store::open_read_only("sweep.db");
//   report::ReportOptions o;  o.out_dir = "report";
//   auto written = report::write_report(store, o);  // report/index.html, report/*.{png,svg,pdf,tsv,gp}
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "db/store.h"

namespace lmsweep::report {

struct ReportOptions {
  std::optional<std::string> study;  // none: the database's only study
  std::string out_dir = "report";    // replaced whole when the report is written
  std::string gnuplot = "gnuplot";   // found on PATH unless a path
  int top = 10;                      // trials in the ranking table
  std::function<void(const std::string&)> progress;  // "[3/7] curves" lines; none: quiet
};

struct ReportSummary {
  std::string index_html;              // out_dir/index.html
  std::vector<std::string> figures;    // names drawn, in page order
  std::vector<std::string> skipped;    // "classes: ..." for each figure left out
};

// Throws lmsweep::Error (and leaves no output folder behind) for an unknown or ambiguous study,
// a study with no trial or no completed trial, an out_dir that cannot be written, gnuplot
// missing or failing.
ReportSummary write_report(db::Store& store, const ReportOptions& options);

}  // namespace lmsweep::report
