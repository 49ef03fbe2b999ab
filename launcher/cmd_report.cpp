// `lmsweep report`, `lmsweep export`, `lmsweep importance`: what a study looks like, in lmsweep's
// own page and in the tools users already have (TensorBoard, Optuna). Thin over report/ and
// export/.
#include <iostream>
#include <optional>
#include <string>

#include <boost/program_options.hpp>

#include "common/error.h"
#include "export/optuna_journal.h"
#include "export/tensorboard_export.h"
#include "launcher/cli.h"
#include "launcher/commands.h"
#include "report/importance.h"
#include "report/report.h"
#include "report/study_data.h"

namespace po = boost::program_options;

namespace lmsweep::cli {
namespace {

std::optional<std::string> given(const std::string& s) {
  return s.empty() ? std::nullopt : std::optional<std::string>(s);
}

}  // namespace

int run_report(int argc, const char* const argv[]) {
  std::string db_path = "lmsweep.db", study, out;
  int top = 10;
  po::options_description desc("options");
  desc.add_options()("help,h", "this help")
      ("db", po::value(&db_path)->default_value(db_path), "results database (may be written by a running sweep)")
      ("study", po::value(&study), "the study (default: the database's only one)")
      ("out", po::value(&out), "folder to write (replaced whole): index.html and every figure as PNG, SVG, PDF, "
       "with its data (.tsv) and gnuplot script (.gp)")
      ("top", po::value(&top)->default_value(top), "trials in the ranking table");
  if (wants_help(argc, argv)) {
    std::cout << help_text("lmsweep report --db FILE [--study NAME] --out DIR",
                           "One HTML page of a study that opens offline: Tables 3 and 1, status counts, the top "
                           "trials, and figures (sensitivity as the paper's Figures 4-5, parallel coordinates, "
                           "learning curves with ASHA's rungs, best so far, per-class AP / precision / recall / F1 "
                           "as Figure 6, the head-tail Pareto front, parameter importance), drawn with gnuplot.",
                           desc);
    return 0;
  }
  parse("report", argc, argv, desc);
  LMSWEEP_CHECK(!out.empty(), "report: --out DIR is required (the folder to write the report into)");
  LMSWEEP_CHECK(top >= 1, "report: --top = {}: must be >= 1", top);
  auto store = db::Store::open_read_only(db_path);
  report::ReportOptions o;
  o.study = given(study);
  o.out_dir = out;
  o.top = top;
  o.progress = [](const std::string& line) { std::cerr << "lmsweep report: " << line << std::endl; };
  const auto r = report::write_report(store, o);
  std::cout << "wrote " << r.index_html << " (" << r.figures.size() << " figures";
  for (const auto& s : r.skipped) std::cout << "; left out " << s;
  std::cout << ")\n";
  return 0;
}

int run_export(int argc, const char* const argv[]) {
  std::string db_path = "lmsweep.db", study, format, out;
  po::options_description desc("options");
  desc.add_options()("help,h", "this help")
      ("db", po::value(&db_path)->default_value(db_path), "results database (may be written by a running sweep)")
      ("study", po::value(&study), "the study (default: the database's only one)")
      ("format", po::value(&format), "tensorboard (a folder of event files: one run per trial, HParams) | "
       "optuna-journal (one file: Optuna's JournalStorage)")
      ("out", po::value(&out), "the folder (tensorboard) or file (optuna-journal) to write; replaced whole");
  if (wants_help(argc, argv)) {
    std::cout << help_text("lmsweep export --db FILE [--study NAME] --format tensorboard|optuna-journal --out PATH",
                           "A study in the formats users' tools read: `tensorboard --logdir PATH` (scalars per "
                           "epoch, the HParams dashboard), or optuna.load_study(..., storage=JournalStorage(...)) "
                           "(then optuna-dashboard and optuna.visualization).",
                           desc);
    return 0;
  }
  parse("export", argc, argv, desc);
  LMSWEEP_CHECK(format == "tensorboard" || format == "optuna-journal",
                "export: --format '{}': choose tensorboard or optuna-journal", format);
  LMSWEEP_CHECK(!out.empty(), "export: --out is required (the {} to write)",
                format == "tensorboard" ? "folder" : "file");
  auto store = db::Store::open_read_only(db_path);
  const auto data = report::load_study(store, given(study));
  LMSWEEP_CHECK(!data.trials.empty(), "{}: study '{}' has no trial yet: nothing to export", db_path, data.study.name);
  if (format == "tensorboard") export_tensorboard(data, out);
  else export_optuna_journal(data, out);
  std::cout << "wrote " << out << " (" << format << ", study " << data.study.name << ", " << data.trials.size()
            << " trials)\n";
  return 0;
}

int run_importance(int argc, const char* const argv[]) {
  std::string db_path = "lmsweep.db", study, objective, format = "table";
  po::options_description desc("options");
  desc.add_options()("help,h", "this help")
      ("db", po::value(&db_path)->default_value(db_path), "results database (may be written by a running sweep)")
      ("study", po::value(&study), "the study (default: the database's only one)")
      ("objective", po::value(&objective), "the metric to explain (default: the study's objective)")
      ("format", po::value(&format)->default_value(format), "table | json");
  if (wants_help(argc, argv)) {
    std::cout << help_text("lmsweep importance --db FILE [--study NAME] [--objective map_tail] [--format table|json]",
                           "Which parameters matter: PED-ANOVA over the completed trials (as Optuna's "
                           "PedAnovaImportanceEvaluator), most important first, summing to 1.",
                           desc);
    return 0;
  }
  parse("importance", argc, argv, desc);
  LMSWEEP_CHECK(format == "table" || format == "json", "importance: --format '{}': choose table or json", format);
  auto store = db::Store::open_read_only(db_path);
  const auto data = report::load_study(store, given(study));
  report::ImportanceOptions o;
  o.objective = given(objective);
  std::cout << report::importance_report(report::param_importances(data, o), format);
  return 0;
}

}  // namespace lmsweep::cli
