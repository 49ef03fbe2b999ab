#pragma once
// The report's figures as data files and gnuplot scripts (torch-free). Each figure is a plain
// text table (`name.tsv`, tab-separated, a `#` header line naming the columns) and a script
// (`name.gp`) that draws it to name.png, name.svg and name.pdf; both stay next to the figures so
// that a user restyles one with `gnuplot name.gp` in the report's folder.
//
// The figures (paper: LM-CLIP, IEEE Access 2025):
//   sensitivity   each trial's best-epoch mAP total / head / middle / tail against every swept
//                 parameter, one panel per parameter, log axis for loguniform (Figures 4-5)
//   parallel      parallel coordinates over all trials, coloured by the objective
//   curves        the objective per epoch of every trial, ASHA's rungs, where trials were pruned
//   best_so_far   the best objective so far against trial number and against wall time
//   classes       per-class AP, precision, recall, F1 of the best trial's best epoch, classes by
//                 training count, head / middle / tail marked (Figure 6)
//   pareto        head against tail mAP (or the study's two objectives) over every (trial,
//                 epoch), with the non-dominated front
//   importance    parameter importance (report/importance.h)
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "report/study_data.h"

namespace lmsweep::report {

struct Figure {
  std::string name;     // file stem
  std::string title;    // the page's heading
  std::string caption;  // one or two sentences under it
  std::vector<std::pair<std::string, std::string>> data;  // (file name, content)
  std::string plot;     // gnuplot commands drawing it (the terminal and output are set around them)
  int width = 1200, height = 800;  // of the PNG, pixels
};

// What the figures need besides the study: the best trial's per-class results and the
// importances, when there are any.
struct FigureInputs {
  const TrialData* best_trial = nullptr;
  const db::EpochRecord* best_epoch = nullptr;
  std::optional<ClassMetrics> classes;
  std::vector<std::pair<std::string, double>> importance;  // most important first
};

// A figure the study has nothing for is left out, with the reason in `skipped` ("classes: the
// trials recorded no per-class AP (command trials)").
std::vector<Figure> make_figures(const StudyData& data, const FigureInputs& inputs,
                                 std::vector<std::string>* skipped);

// The whole script of a figure: the terminal set for PNG, SVG and PDF in turn around `plot`.
std::string gnuplot_script(const Figure& figure, const std::string& source);

// The metrics the sensitivity figure plots: LM-CLIP's four maps (in %), or a command study's
// objectives as they are.
struct MetricSet {
  std::vector<std::string> names;
  bool percent = true;
};
MetricSet report_metrics(const StudyData& data);

}  // namespace lmsweep::report
