#include "report/figures.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include <fmt/format.h>

#include "eval/metrics.h"
#include "sweep/asha.h"
#include "sweep/pareto.h"

namespace lmsweep::report {
namespace {

using sweep::Dimension;
using sweep::Distribution;

// Colours of the four maps, as the paper's figures tell them apart.
const std::map<std::string, std::string> kMetricColour = {
    {"map", "#222222"}, {"map_head", "#1f77b4"}, {"map_middle", "#2ca02c"}, {"map_tail", "#d62728"}};
const char* const kPalette[] = {"#222222", "#1f77b4", "#2ca02c", "#d62728", "#9467bd", "#ff7f0e"};

std::string num(double v) { return std::isfinite(v) ? fmt::format("{:.6g}", v) : "NaN"; }
std::string num(const std::optional<double>& v) { return v ? num(*v) : "NaN"; }

// A gnuplot string literal (the terminals are noenhanced: '_' stays '_').
std::string gp_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += (c == '\t' || c == '\n') ? ' ' : c;
  }
  return out + "\"";
}

// A tic label of an explicit list: gnuplot reads it as a format, so '%' is doubled.
std::string tic_label(const std::string& s) {
  std::string out;
  for (char c : s) out += c == '%' ? std::string("%%") : std::string(1, c);
  return gp_string(out);
}

std::string tsv_field(std::string s) {
  std::replace_if(s.begin(), s.end(), [](char c) { return c == '\t' || c == '\n' || c == '\r'; }, ' ');
  return s.empty() ? "-" : s;
}

bool is_lmclip_map(const std::string& m) { return lmclip_maps({m}); }

std::string metric_label(const std::string& m, bool percent) {
  static const std::map<std::string, std::string> names = {
      {"map", "mAP total"}, {"map_head", "mAP head"}, {"map_middle", "mAP middle"}, {"map_tail", "mAP tail"},
      {"map_single", "mAP single-label"}, {"map_multi", "mAP multi-label"}};
  const auto it = names.find(m);
  return (it != names.end() ? it->second : m) + (percent && is_lmclip_map(m) ? " (%)" : "");
}

std::optional<double> shown(const db::EpochRecord& e, const std::string& metric) {
  auto v = db::epoch_value(e, metric);
  if (v && is_lmclip_map(metric)) *v *= 100;
  return v;
}

std::vector<const Dimension*> swept(const StudyData& d) {
  std::vector<const Dimension*> out;
  for (const auto& dim : d.space.dimensions())
    if (dim.dist != Distribution::Fixed) out.push_back(&dim);
  return out;
}

// A parameter as a plotted number: choices by their index in the list.
std::optional<double> axis_value(const Dimension& dim, const nlohmann::json& params) {
  if (!params.contains(dim.name)) return std::nullopt;
  const auto& v = params[dim.name];
  if (dim.dist == Distribution::Choice) {
    for (size_t i = 0; i < dim.values.size(); ++i)
      if (dim.values[i].to_json() == v) return static_cast<double>(i);
    return std::nullopt;
  }
  return v.is_number() ? std::optional<double>(v.get<double>()) : std::nullopt;
}

// The x axis of a parameter: its name, log scale for loguniform, the listed values for a choice.
std::string x_axis(const Dimension& dim) {
  std::string s = fmt::format("set xlabel {}\n", gp_string(dim.name));
  if (dim.dist == Distribution::LogUniform) return s + "set logscale x\n";
  if (dim.dist == Distribution::Choice) {
    std::string tics;
    for (size_t i = 0; i < dim.values.size(); ++i)
      tics += fmt::format("{}{} {}", i ? ", " : "", tic_label(sweep::to_flag_value(dim.values[i])), i);
    return s + fmt::format("set xtics ({})\nset xrange [-0.5:{}]\n", tics, dim.values.size() - 0.5);
  }
  return s;
}

Figure sensitivity(const StudyData& d, const MetricSet& ms, const std::vector<const Dimension*>& dims) {
  Figure f{"sensitivity", "Sensitivity to each parameter", "", {}, ""};
  std::string tsv = "# trial\tstatus";
  for (const auto* dim : dims) tsv += "\t" + dim->name + (dim->dist == Distribution::Choice ? " (index)" : "");
  for (const auto& m : ms.names) tsv += "\t" + metric_label(m, ms.percent);
  tsv += "\n";
  for (const auto* t : trials_with(d, d.objective())) {
    const auto* best = best_epoch(*t, d.objective());
    tsv += fmt::format("{}\t{}", t->info.number, db::to_string(t->info.status));
    for (const auto* dim : dims) tsv += "\t" + num(axis_value(*dim, t->params));
    for (const auto& m : ms.names) tsv += "\t" + num(shown(*best, m));
    tsv += "\n";
  }
  f.data.emplace_back("sensitivity.tsv", tsv);
  const size_t cols = std::min<size_t>(dims.size(), 3), rows = (dims.size() + cols - 1) / cols;
  f.width = static_cast<int>(440 * cols);
  f.height = static_cast<int>(360 * rows + 40);
  f.caption = fmt::format("Each trial at its best epoch by {}: {} against every swept parameter (the paper's "
                          "Figures 4 and 5).", d.objective(), ms.percent ? "mAP total / head / middle / tail" : "the objectives");
  std::string p = fmt::format("set multiplot layout {},{} title {}\nset key top left opaque box\nset grid\n"
                              "set offsets graph 0.03, graph 0.03, graph 0.06, graph 0.06\n", rows, cols,
                              gp_string("Best-epoch results against each parameter"));
  p += fmt::format("set ylabel {}\n", gp_string(ms.percent ? "mAP (%)" : "value"));
  for (size_t i = 0; i < dims.size(); ++i) {
    p += "unset logscale x\nset xtics autofreq\nset autoscale x\n" + x_axis(*dims[i]) + "plot ";
    for (size_t m = 0; m < ms.names.size(); ++m) {
      const auto it = kMetricColour.find(ms.names[m]);
      const std::string colour = it != kMetricColour.end() ? it->second : kPalette[m % 6];
      p += fmt::format("{}\"sensitivity.tsv\" using {}:{} with points pt 7 ps 0.8 lc rgb \"{}\" {}", m ? ", " : "",
                       3 + i, 3 + dims.size() + m, colour,
                       i == 0 ? "title " + gp_string(metric_label(ms.names[m], false)) : "notitle");
    }
    p += i == 0 ? "\nunset key\n" : "\n";  // one key, in the first panel
  }
  f.plot = p + "unset multiplot\n";
  return f;
}

// Each parameter's axis spans its dimension (log10 for loguniform), a choice's with its values.
std::string parallel_axes(const std::vector<const Dimension*>& dims) {
  std::string s;
  for (size_t i = 0; i < dims.size(); ++i) {
    const Dimension& dim = *dims[i];
    if (dim.dist == Distribution::Choice) {
      std::string tics;
      for (size_t k = 0; k < dim.values.size(); ++k)
        tics += fmt::format("{}{} {}", k ? ", " : "", tic_label(sweep::to_flag_value(dim.values[k])), k);
      s += fmt::format("set paxis {0} range [-0.2:{1}]\nset paxis {0} tics ({2})\n", i + 1, dim.values.size() - 0.8, tics);
    } else if (dim.dist == Distribution::LogUniform) {
      s += fmt::format("set paxis {} range [{}:{}]\n", i + 1, num(std::log10(dim.low)), num(std::log10(dim.high)));
    } else {
      s += fmt::format("set paxis {} range [{}:{}]\n", i + 1, num(dim.low), num(dim.high));
    }
  }
  return s;
}

Figure parallel(const StudyData& d, const std::vector<const Dimension*>& dims) {
  Figure f{"parallel", "Parallel coordinates", "", {}, ""};
  const std::string& obj = d.objective();
  std::string tsv = "# trial";
  for (const auto* dim : dims)
    tsv += "\t" + (dim->dist == Distribution::LogUniform ? "log10 " + dim->name : dim->name);
  tsv += "\t" + obj + "\n";
  for (const auto* t : trials_with(d, obj)) {
    tsv += std::to_string(t->info.number);
    for (const auto* dim : dims) {
      auto v = axis_value(*dim, t->params);
      if (v && dim->dist == Distribution::LogUniform) v = std::log10(*v);
      tsv += "\t" + num(v);
    }
    tsv += "\t" + num(shown(*best_epoch(*t, obj), obj)) + "\n";
  }
  f.data.emplace_back("parallel.tsv", tsv);
  f.width = std::max(900, static_cast<int>(160 * (dims.size() + 1)));
  f.height = 600;
  f.caption = fmt::format("Every trial as a line through its parameters (choices by their index, loguniform ones "
                          "as log10), coloured by its best {}.", obj);
  std::string tics;
  for (size_t i = 0; i <= dims.size(); ++i) {
    const std::string label = i < dims.size() ? (dims[i]->dist == Distribution::LogUniform ? "log10 " : "") + dims[i]->name
                                              : metric_label(obj, true);
    tics += fmt::format("{}{} {}", i ? ", " : "", tic_label(label), i + 1);
  }
  const size_t last = dims.size() + 2;
  f.plot = fmt::format("set title {}\nunset ytics\nunset border\nset xtics ({}) nomirror scale 0\n"
                       "set for [i=1:{}] paxis i tics\n{}set palette defined (0 \"#3b4cc0\", 0.5 \"#dddddd\", 1 \"#b40426\")\n"
                       "set cblabel {}\nplot for [col=2:{}] \"parallel.tsv\" using col:{} with parallelaxes lw 1.5 "
                       "lc palette notitle\n",
                       gp_string("Parallel coordinates"), tics, dims.size() + 1, parallel_axes(dims),
                       gp_string(metric_label(obj, true)), last, last);
  return f;
}

// ASHA's rung epochs when the study ran with it (the scheduler's own milestones).
std::vector<double> rung_epochs(const StudyData& d) {
  if (d.study.scheduler != "asha") return {};
  const auto s = nlohmann::json::parse(d.study.scheduler_json.empty() ? "{}" : d.study.scheduler_json, nullptr, false);
  int64_t max_epoch = 0;
  for (const auto& t : d.trials)
    for (const auto& e : t.epochs) max_epoch = std::max(max_epoch, e.epoch);
  const int grace = s.is_object() ? s.value("grace", 1) : 1;
  const double reduction = s.is_object() ? s.value("reduction", 2.0) : 2.0;
  if (grace < 1 || reduction <= 1 || max_epoch < grace) return {};
  std::vector<double> out;
  const sweep::AshaScheduler asha(grace, reduction, static_cast<int>(max_epoch));
  for (const auto& r : asha.rungs()) out.push_back(r.milestone);
  return out;
}

Figure curves(const StudyData& d) {
  Figure f{"curves", "Learning curves", "", {}, ""};
  const std::string& obj = d.objective();
  std::string tsv, pruned = "# epoch\tvalue (the last epoch of each pruned trial)\n";
  size_t blocks = 0;
  for (const auto& t : d.trials) {
    std::string block;
    std::optional<std::pair<int64_t, double>> last;
    const int code = t.info.status == db::TrialStatus::Completed ? 1 : t.info.status == db::TrialStatus::Pruned ? 2 : 3;
    for (const auto& e : t.epochs) {
      const auto v = shown(e, obj);
      if (!v) continue;
      block += fmt::format("{}\t{}\t{}\n", e.epoch, num(*v), code);
      last = {e.epoch, *v};
    }
    if (block.empty()) continue;
    tsv += fmt::format("{}# trial {} ({})\n# epoch\t{}\tstatus (1 completed, 2 pruned, 3 other)\n{}", blocks ? "\n\n" : "",
                       t.info.number, db::to_string(t.info.status), obj, block);
    if (t.info.status == db::TrialStatus::Pruned && last) pruned += fmt::format("{}\t{}\n", last->first, num(last->second));
    ++blocks;
  }
  f.data.emplace_back("curves.tsv", tsv);
  f.data.emplace_back("curves_pruned.tsv", pruned);
  const auto rungs = rung_epochs(d);
  std::string p = fmt::format("set title {}\nset xlabel \"epoch\"\nset ylabel {}\nset grid\nset key outside right top\n"
                              "set linetype 1 lc rgb \"#1f77b4\"\nset linetype 2 lc rgb \"#ff7f0e\"\n"
                              "set linetype 3 lc rgb \"#999999\"\n",
                              gp_string("The objective per epoch"), gp_string(metric_label(obj, true)));
  for (double r : rungs)
    p += fmt::format("set arrow from {0}, graph 0 to {0}, graph 1 nohead dt 2 lc rgb \"#555555\"\n"
                     "set label {1} at {0}, graph 1.02 center\n", r, gp_string(fmt::format("rung {:g}", r)));
  p += fmt::format("plot for [i=0:{}] \"curves.tsv\" index i using 1:2:3 with lines lw 1.2 lc variable notitle, "
                   "NaN with lines lt 1 title \"completed\", NaN with lines lt 2 title \"pruned\", NaN with lines lt 3 "
                   "title \"failed / running\", \"curves_pruned.tsv\" using 1:2 with points pt 2 ps 1.2 lc rgb "
                   "\"#d62728\" title \"pruned here\"\n",
                   blocks - 1);
  f.plot = p;
  f.caption = fmt::format("{} per epoch for every trial{}; a cross marks where a pruned trial stopped.", obj,
                          rungs.empty() ? "" : ", with ASHA's rungs dashed");
  return f;
}

// (x, value, best so far) rows in the order given.
std::string running_best(const std::vector<std::pair<double, double>>& xs, bool maximize) {
  std::string out;
  double best = maximize ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
  for (const auto& [x, v] : xs) {
    best = maximize ? std::max(best, v) : std::min(best, v);
    out += fmt::format("{}\t{}\t{}\n", num(x), num(v), num(best));
  }
  return out;
}

Figure best_so_far(const StudyData& d) {
  Figure f{"best_so_far", "Best so far", "", {}, ""};
  const std::string& obj = d.objective();
  std::vector<std::pair<double, double>> by_number, by_time;
  double t0 = std::numeric_limits<double>::infinity();
  for (const auto& t : d.trials) t0 = std::min(t0, t.info.started_at.value_or(t.info.created_at));
  for (const auto* t : trials_with(d, obj)) {
    const auto* e = best_epoch(*t, obj);
    const double v = *shown(*e, obj);
    by_number.emplace_back(static_cast<double>(t->info.number), v);
    by_time.emplace_back((e->recorded_at - t0) / 60.0, v);  // when the trial's best became known
  }
  std::sort(by_time.begin(), by_time.end());
  const bool maximize = db::objective_maximized(obj);
  f.data.emplace_back("best_so_far.tsv",
                      "# by trial number\n# trial\tvalue\tbest so far\n" + running_best(by_number, maximize) +
                          "\n\n# by wall time (the recording of each trial's best epoch)\n# minutes\tvalue\tbest so far\n" +
                          running_best(by_time, maximize));
  f.width = 1300;
  f.height = 520;
  f.caption = fmt::format("Each trial's best {} and the best so far, against trial number and against the minutes "
                          "since the sweep's first trial started.", obj);
  const std::string y = gp_string(metric_label(obj, true));
  f.plot = fmt::format("set multiplot layout 1,2 title {}\nset grid\nset key bottom right\nset ylabel {}\n"
                       "set xlabel \"trial\"\nplot \"best_so_far.tsv\" index 0 using 1:2 with points pt 7 ps 0.7 lc rgb "
                       "\"#999999\" title \"trial\", \"\" index 0 using 1:3 with steps lw 2 lc rgb \"#d62728\" title "
                       "\"best so far\"\nset xlabel \"minutes\"\nplot \"best_so_far.tsv\" index 1 using 1:2 with points "
                       "pt 7 ps 0.7 lc rgb \"#999999\" title \"trial\", \"\" index 1 using 1:3 with steps lw 2 lc rgb "
                       "\"#d62728\" title \"best so far\"\nunset multiplot\n",
                       gp_string("Best " + obj + " so far"), y);
  return f;
}


Figure classes(const ClassMetrics& c, const TrialData& trial, const db::EpochRecord& epoch) {
  Figure f{"classes", "Per-class results of the best trial", "", {}, ""};
  const size_t n = c.ap.size();
  std::vector<size_t> order(n);
  for (size_t k = 0; k < n; ++k) order[k] = k;
  const bool counted = c.train_count.size() == n;
  if (counted)
    std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return c.train_count[a] > c.train_count[b]; });
  std::vector<std::string> group(n, "-");
  if (counted) {
    const auto g = group_classes(c.train_count);
    for (int k : g.head) group[k] = "head";
    for (int k : g.middle) group[k] = "middle";
    for (int k : g.tail) group[k] = "tail";
  }
  const bool prf = c.precision.size() == n;
  std::string tsv = "# position\tclass\tname\ttrain count\tgroup\tAP (%)\tprecision (%)\trecall (%)\tF1 (%)\n";
  for (size_t i = 0; i < n; ++i) {
    const size_t k = order[i];
    tsv += fmt::format("{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\n", i, k, tsv_field(c.names[k]),
                       counted ? std::to_string(c.train_count[k]) : "NaN", group[k], num(c.ap[k] * 100),
                       prf ? num(c.precision[k] * 100) : "NaN", prf ? num(c.recall[k] * 100) : "NaN",
                       prf ? num(c.f1[k] * 100) : "NaN");
  }
  f.data.emplace_back("classes.tsv", tsv);
  f.width = std::max(1000, static_cast<int>(34 * n + 240));
  f.height = 620;
  std::string marks;
  for (size_t i = 0, start = 0; i <= n; ++i) {
    if (i < n && (i == 0 || group[order[i]] == group[order[i - 1]])) continue;
    if (start > 0) marks += fmt::format("set arrow from {0}, graph 0 to {0}, graph 1 nohead dt 2 lc rgb \"#555555\"\n", start - 0.5);
    if (counted)
      marks += fmt::format("set label {} at {}, graph 1.03 center\n",
                           gp_string(fmt::format("{} ({})", group[order[start]], i - start)), (start + i - 1) / 2.0);
    start = i;
  }
  f.caption = fmt::format("Trial {} at epoch {}: per-class AP{} (threshold 0.5 on the softmax scores, as the "
                          "paper's Figure 6), classes {}.", trial.info.number, epoch.epoch,
                          prf ? ", precision, recall and F1" : "", counted ? "by training count, head / middle / tail marked" : "by index");
  f.plot = fmt::format("set title {} offset 0,1\nset style data histograms\nset style histogram clustered gap 1\n"
                       "set style fill solid 0.85 border -1\nset boxwidth 0.9\nset xtics rotate by -60 scale 0 font \",8\"\n"
                       "set yrange [0:105]\nset ylabel \"%\"\nset grid ytics\nset key outside right top\nset xrange [-0.6:{}]\n{}"
                       "plot \"classes.tsv\" using 6:xtic(3) title \"AP\" lc rgb \"#1f77b4\"{}\n",
                       gp_string(fmt::format("Trial {}, epoch {}", trial.info.number, epoch.epoch)), n - 0.4, marks,
                       prf ? ", \"\" using 7 title \"precision\" lc rgb \"#ff7f0e\", \"\" using 8 title \"recall\" lc rgb "
                             "\"#2ca02c\", \"\" using 9 title \"F1\" lc rgb \"#9467bd\""
                           : "");
  return f;
}

std::optional<Figure> pareto(const StudyData& d, std::string* why) {
  std::vector<std::string> objs = d.objectives.size() >= 2 ? d.objectives : std::vector<std::string>{"map_head", "map_tail"};
  objs.resize(2);
  std::vector<std::vector<double>> pts;
  std::vector<std::pair<int64_t, int64_t>> ids;
  for (const auto& t : d.trials)
    for (const auto& e : t.epochs) {
      const auto a = shown(e, objs[0]), b = shown(e, objs[1]);
      if (a && b) {
        pts.push_back({*a, *b});
        ids.emplace_back(t.info.number, e.epoch);
      }
    }
  if (pts.empty()) {
    *why = fmt::format("no epoch recorded both {} and {}", objs[0], objs[1]);
    return std::nullopt;
  }
  const auto front = sweep::pareto_front(pts);
  std::vector<bool> on(pts.size(), false);
  for (size_t i : front) on[i] = true;
  std::string tsv = fmt::format("# trial\tepoch\t{}\t{}\ton the front\n", objs[0], objs[1]);
  for (size_t i = 0; i < pts.size(); ++i)
    tsv += fmt::format("{}\t{}\t{}\t{}\t{}\n", ids[i].first, ids[i].second, num(pts[i][0]), num(pts[i][1]), on[i] ? 1 : 0);
  std::vector<size_t> sorted = front;
  std::sort(sorted.begin(), sorted.end(), [&](size_t a, size_t b) { return pts[a][0] < pts[b][0]; });
  std::string ftsv = fmt::format("# the front by {}\n# trial\tepoch\t{}\t{}\n", objs[0], objs[0], objs[1]);
  for (size_t i : sorted) ftsv += fmt::format("{}\t{}\t{}\t{}\n", ids[i].first, ids[i].second, num(pts[i][0]), num(pts[i][1]));
  Figure f{"pareto", fmt::format("{} against {}", objs[1], objs[0]), "", {}, ""};
  f.data.emplace_back("pareto.tsv", tsv);
  f.data.emplace_back("pareto_front.tsv", ftsv);
  f.width = 900;
  f.height = 700;
  f.caption = fmt::format("Every (trial, epoch) pair; the {} non-dominated ones (no other pair is at least as good "
                          "in both and better in one) joined in red, as `lmsweep best --pareto` lists them.", front.size());
  f.plot = fmt::format("set title {}\nset xlabel {}\nset ylabel {}\nset grid\nset key bottom left\n"
                       "plot \"pareto.tsv\" using 3:4 with points pt 7 ps 0.6 lc rgb \"#aaaaaa\" title \"(trial, epoch)\", "
                       "\"pareto_front.tsv\" using 3:4 with linespoints pt 7 ps 1 lw 2 lc rgb \"#d62728\" title \"front\"\n",
                       gp_string("Pareto front"), gp_string(metric_label(objs[0], true)), gp_string(metric_label(objs[1], true)));
  return f;
}

Figure importance(const std::vector<std::pair<std::string, double>>& values, const std::string& objective) {
  Figure f{"importance", "Parameter importance", "", {}, ""};
  std::string tsv = "# rank\tparameter\timportance\n";
  for (size_t i = 0; i < values.size(); ++i) tsv += fmt::format("{}\t{}\t{}\n", i, tsv_field(values[i].first), num(values[i].second));
  f.data.emplace_back("importance.tsv", tsv);
  f.width = std::max(700, static_cast<int>(110 * values.size() + 200));
  f.height = 500;
  f.caption = fmt::format("How much each parameter matters to {} (PED-ANOVA, as `lmsweep importance` computes it; "
                          "importances sum to 1).", objective);
  f.plot = fmt::format("set title {}\nset style fill solid 0.85 border -1\nset boxwidth 0.7\nset yrange [0:*]\n"
                       "set ylabel \"importance\"\nset grid ytics\nset xtics scale 0\nset xrange [-0.6:{}]\n"
                       "plot \"importance.tsv\" using 1:3:xtic(2) with boxes lc rgb \"#1f77b4\" notitle\n",
                       gp_string("Importance for " + objective), values.size() - 0.4);
  return f;
}

}  // namespace

MetricSet report_metrics(const StudyData& d) {
  MetricSet ms;
  const bool lmclip = lmclip_maps(d.objectives);
  if (lmclip) {
    ms.names = {"map", "map_head", "map_middle", "map_tail"};
    for (const auto& o : d.objectives)
      if (std::find(ms.names.begin(), ms.names.end(), o) == ms.names.end()) ms.names.push_back(o);
  } else {
    ms.names = d.objectives;
    ms.percent = false;
  }
  return ms;
}

std::vector<Figure> make_figures(const StudyData& d, const FigureInputs& in, std::vector<std::string>* skipped) {
  auto skip = [&](const std::string& why) { if (skipped) skipped->push_back(why); };
  std::vector<Figure> out;
  const auto dims = swept(d);
  if (dims.empty()) {
    skip("sensitivity, parallel: the study sweeps no parameter");
  } else {
    out.push_back(sensitivity(d, report_metrics(d), dims));
    out.push_back(parallel(d, dims));
  }
  out.push_back(curves(d));
  out.push_back(best_so_far(d));
  if (in.classes && in.best_trial && in.best_epoch)
    out.push_back(classes(*in.classes, *in.best_trial, *in.best_epoch));
  else
    skip("classes: the best trial recorded no per-class AP (a command trial)");
  std::string why;
  if (auto p = pareto(d, &why)) out.push_back(std::move(*p));
  else skip("pareto: " + why);
  if (!in.importance.empty()) out.push_back(importance(in.importance, d.objective()));
  else skip("importance: not computed for this study");
  return out;
}

std::string gnuplot_script(const Figure& f, const std::string& source) {
  std::string files;
  for (const auto& [name, content] : f.data) files += (files.empty() ? "" : ", ") + name;
  const double w_in = f.width / 96.0, h_in = f.height / 96.0;
  return fmt::format(
      "# {title}\n# Made by `lmsweep report` from {source}. Data: {files}.\n"
      "# Redraw (in this folder): gnuplot {name}.gp  -> {name}.png, {name}.svg, {name}.pdf\n"
      "do for [format in \"png svg pdf\"] {{\n"
      "reset\n"
      "if (format eq \"png\") {{ set terminal pngcairo noenhanced size {w},{h} font \"Sans,10\" background rgb \"white\" }}\n"
      "if (format eq \"svg\") {{ set terminal svg noenhanced size {w},{h} dynamic font \"Sans,10\" background rgb \"white\" }}\n"
      "if (format eq \"pdf\") {{ set terminal pdfcairo noenhanced size {wi:.2f}in,{hi:.2f}in font \"Sans,10\" }}\n"
      "set output \"{name}.\".format\n"
      "set datafile separator \"\\t\"\nset datafile missing \"NaN\"\n"
      "{plot}"
      "unset output\n}}\n",
      fmt::arg("title", f.title), fmt::arg("source", source), fmt::arg("files", files), fmt::arg("name", f.name),
      fmt::arg("w", f.width), fmt::arg("h", f.height), fmt::arg("wi", w_in), fmt::arg("hi", h_in),
      fmt::arg("plot", f.plot));
}

}  // namespace lmsweep::report
