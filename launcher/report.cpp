#include "launcher/report.h"

#include "common/host.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "common/strings.h"
#include "report/study_data.h"
#include "sweep/pareto.h"

namespace lmsweep::cli {
namespace {

std::vector<db::StudyInfo> selected_studies(db::Store& store, const std::optional<std::string>& name) {
  if (name) {
    auto s = store.find_study(*name);
    if (!s) {
      std::string names;
      for (const auto& st : store.list_studies()) names += (names.empty() ? "" : ", ") + st.name;
      throw_error("{}: no study named '{}'{}", store.path(), *name, names.empty() ? " (the database has none)"
                                                                         : "; studies: " + names);
    }
    return {*s};
  }
  auto all = store.list_studies();
  LMSWEEP_CHECK(!all.empty(), "{}: the database holds no study yet", store.path());
  return all;
}

using report::study_objectives;  // [sweep] objectives, else the study's one

using report::lmclip_maps;  // LM-CLIP's maps are shown in %, a command trial's metrics as they are

std::string pct(const std::optional<double>& v) { return v ? fmt::format("{:.2f}", *v * 100) : "-"; }

// A value of the params JSON as the user wrote it (numbers shortest).
std::string param_text(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) return fmt::format("{:.4g}", v.get<double>());
  return v.dump();
}

struct Row {
  std::string study;
  int64_t trial = 0;
  std::string status;
  int64_t epoch = 0;
  double value = 0;
  nlohmann::json params;
  db::EpochRecord record;
};

std::vector<Row> ranked(db::Store& store, const db::StudyInfo& study, const std::string& objective, int64_t top) {
  std::vector<Row> rows;
  for (const auto& b : store.best_trials(study.id, db::BestQuery{objective, top, false})) {
    Row r;
    r.study = study.name;
    r.trial = b.trial.number;
    r.status = db::to_string(b.trial.status);
    r.epoch = b.epoch.epoch;
    r.value = b.value;
    r.params = nlohmann::json::parse(b.trial.params_json.empty() ? "{}" : b.trial.params_json);
    r.record = b.epoch;
    rows.push_back(std::move(r));
  }
  return rows;
}

std::vector<std::string> param_names(const std::vector<Row>& rows) {
  std::set<std::string> names;
  for (const auto& r : rows)
    for (auto it = r.params.begin(); it != r.params.end(); ++it) names.insert(it.key());
  return {names.begin(), names.end()};
}

// A metric in a table: shown (table, markdown) in % for LM-CLIP's maps, else raw (csv).
std::string metric_cell(const std::optional<double>& v, bool shown, bool percent) {
  if (!v) return shown ? "-" : "";
  if (!shown) return fmt::format("{:.6f}", *v);
  return percent ? pct(v) : fmt::format("{:.4g}", *v);
}

// RFC 4180: a field with a comma, quote or line break is quoted, its quotes doubled.
std::string csv_field(const std::string& v) {
  if (v.find_first_of(",\"\r\n") == std::string::npos) return v;
  std::string out = "\"";
  for (char c : v) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

// A markdown table cell: `|` would end the cell and a line break the row.
std::string markdown_cell(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '|') out += "\\|";
    else if (c == '\n' || c == '\r') out += ' ';
    else out += c;
  }
  return out;
}

// RFC 4180 records: the header, then one line per row.
std::string render_csv(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& body) {
  std::ostringstream s;
  auto line = [&](const std::vector<std::string>& cells) {
    for (size_t i = 0; i < cells.size(); ++i) s << (i ? "," : "") << csv_field(cells[i]);
    s << "\n";
  };
  line(header);
  for (const auto& cells : body) line(cells);
  return s.str();
}

// A padded text table, or a GitHub markdown table.
std::string render(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& body,
                   bool markdown) {
  std::vector<size_t> width(header.size());
  for (size_t i = 0; i < header.size(); ++i) width[i] = header[i].size();
  for (const auto& row : body)
    for (size_t i = 0; i < row.size() && i < width.size(); ++i)
      width[i] = std::max(width[i], (markdown ? markdown_cell(row[i]) : row[i]).size());
  std::ostringstream s;
  auto line = [&](const std::vector<std::string>& cells) {
    if (markdown) s << "|";
    for (size_t i = 0; i < header.size(); ++i) {
      const std::string c = i < cells.size() ? (markdown ? markdown_cell(cells[i]) : cells[i]) : "";
      s << (markdown ? " " : (i ? "  " : "")) << fmt::format("{:<{}}", c, width[i]) << (markdown ? " |" : "");
    }
    s << "\n";
  };
  line(header);
  if (markdown) {
    s << "|";
    for (size_t i = 0; i < header.size(); ++i) s << std::string(width[i] + 2, '-') << "|";
    s << "\n";
  } else {
    size_t total = 0;
    for (auto w : width) total += w + 2;
    s << std::string(total - 2, '-') << "\n";
  }
  for (const auto& row : body) line(row);
  return s.str();
}

struct FrontRow {
  Row row;
  std::vector<double> values;  // one per objective
};

// A study's non-dominated (trial, epoch) pairs, best first by the first objective.
std::vector<FrontRow> study_front(db::Store& store, const db::StudyInfo& st, const std::vector<std::string>& objectives) {
  std::vector<FrontRow> all;
  for (const auto& t : store.trials(st.id))
    for (const auto& e : store.epochs(t.id)) {
      FrontRow f;
      for (const auto& o : objectives)
        if (const auto v = db::epoch_value(e, o)) f.values.push_back(*v);
      if (f.values.size() != objectives.size()) continue;  // an objective not recorded at this epoch
      f.row = {st.name, t.number, std::string(db::to_string(t.status)), e.epoch, f.values[0],
               nlohmann::json::parse(t.params_json.empty() ? "{}" : t.params_json), e};
      all.push_back(std::move(f));
    }
  std::vector<std::vector<double>> points;
  for (const auto& f : all) points.push_back(f.values);
  std::vector<FrontRow> front;
  for (size_t i : sweep::pareto_front(points)) front.push_back(all[i]);
  std::stable_sort(front.begin(), front.end(), [](const auto& a, const auto& b) { return a.values[0] > b.values[0]; });
  return front;
}

// A metric no epoch of a study recorded is a typo or another study's: say which.
void check_recorded(db::Store& store, const db::StudyInfo& st, const std::vector<std::string>& objectives) {
  std::set<std::string> seen;
  bool any_epoch = false;
  for (const auto& t : store.trials(st.id))
    for (const auto& e : store.epochs(t.id)) {
      any_epoch = true;
      for (const auto& o : objectives)
        if (db::epoch_value(e, o)) seen.insert(o);
    }
  for (const auto& o : objectives)
    LMSWEEP_CHECK(!any_epoch || seen.count(o), "--objectives: study '{}' records no '{}' in any epoch", st.name, o);
}

std::string pareto_report(db::Store& store, const BestOptions& options) {
  const auto studies = selected_studies(store, options.study);
  // --objectives, else the study's own (two or more), else LM-CLIP's head / tail trade-off.
  std::vector<std::string> objectives = options.objectives;
  if (objectives.empty() && studies.size() == 1 && study_objectives(studies[0]).size() >= 2)
    objectives = study_objectives(studies[0]);
  if (objectives.empty()) objectives = {"map_head", "map_tail"};
  LMSWEEP_CHECK(objectives.size() >= 2, "--objectives: give two or more, e.g. map_head,map_tail");
  for (const auto& o : objectives) {
    LMSWEEP_CHECK(db::is_objective(o) || is_metric_name(o),
                  "--objectives: '{}' is not a metric name; LM-CLIP's: map, map_head, map_middle, map_tail, "
                  "map_single, map_multi", o);
    LMSWEEP_CHECK(db::objective_maximized(o), "--objectives: '{}' is minimised; the front maximises every objective "
                  "(use maps, or a command trial's metric)", o);
  }
  std::vector<FrontRow> rows;
  std::vector<std::pair<std::string, double>> volumes;
  const bool percent = lmclip_maps(objectives);
  for (const auto& st : studies) {
    check_recorded(store, st, objectives);
    auto front = study_front(store, st, objectives);
    std::vector<std::vector<double>> pts;
    for (const auto& f : front) pts.push_back(f.values);
    volumes.emplace_back(st.name, sweep::hypervolume(pts, std::vector<double>(objectives.size(), 0.0)));
    rows.insert(rows.end(), front.begin(), front.end());
  }
  std::vector<Row> plain;
  for (const auto& f : rows) plain.push_back(f.row);
  const auto names = param_names(plain);
  if (options.format == "json") {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& f : rows) {
      nlohmann::json o = {{"study", f.row.study}, {"trial", f.row.trial}, {"status", f.row.status},
                          {"epoch", f.row.epoch}, {"params", f.row.params}};
      for (size_t k = 0; k < objectives.size(); ++k) o[objectives[k]] = f.values[k];
      out.push_back(o);
    }
    return out.dump(2) + "\n";
  }
  std::vector<std::string> header = {"study", "trial", "status", "epoch"};
  header.insert(header.end(), objectives.begin(), objectives.end());
  header.insert(header.end(), names.begin(), names.end());
  const bool csv = options.format == "csv", md = options.format == "markdown";
  std::vector<std::vector<std::string>> body;
  for (const auto& f : rows) {
    std::vector<std::string> cells = {f.row.study, std::to_string(f.row.trial), f.row.status, std::to_string(f.row.epoch)};
    for (double v : f.values) cells.push_back(csv ? fmt::format("{:.6f}", v) : percent ? pct(v) : fmt::format("{:.4g}", v));
    for (const auto& n : names) cells.push_back(f.row.params.contains(n) ? param_text(f.row.params[n]) : "");
    body.push_back(std::move(cells));
  }
  if (csv) return render_csv(header, body);
  std::ostringstream s;
  std::string joined;
  for (const auto& o : objectives) joined += (joined.empty() ? "" : " / ") + o;
  s << (md ? "### " : "") << "Pareto front of " << joined << (percent ? " (mAP in %)" : "") << ": the (trial, epoch) pairs no other beats "
    << "in all of them\n\n" << render(header, body, md) << "\n";
  for (const auto& [study, v] : volumes)
    s << fmt::format("hypervolume of '{}' (reference 0 in every objective): {:.6f}\n", study, v);
  return s.str();
}

}  // namespace

std::string best_report(db::Store& store, const BestOptions& options) {
  if (options.pareto) {
    LMSWEEP_CHECK(options.format == "table" || options.format == "csv" || options.format == "json" ||
                      options.format == "markdown",
                  "--format = '{}': valid: table, csv, json, markdown", options.format);
    return pareto_report(store, options);
  }
  LMSWEEP_CHECK(options.format == "table" || options.format == "csv" || options.format == "json" ||
                    options.format == "markdown",
                "--format = '{}': valid: table, csv, json, markdown", options.format);
  if (options.objective)
    LMSWEEP_CHECK(db::is_objective(*options.objective) || is_metric_name(*options.objective),
                  "--objective = '{}': valid: map, map_head, map_middle, map_tail, or a command trial's metric",
                  *options.objective);
  const auto studies = selected_studies(store, options.study);
  std::vector<Row> all;
  std::vector<std::pair<db::StudyInfo, std::vector<Row>>> per_study;
  for (const auto& st : studies) {
    const std::string objective = options.objective.value_or(st.objective.empty() ? "map" : st.objective);
    auto rows = ranked(store, st, objective, options.top);
    all.insert(all.end(), rows.begin(), rows.end());
    per_study.emplace_back(st, std::move(rows));
  }
  const auto names = param_names(all);
  // LM-CLIP's four maps in %, or the studies' own metrics (command trials) as they are.
  std::vector<std::string> metrics;
  for (const auto& st : studies)
    for (const auto& o : options.objective ? std::vector<std::string>{*options.objective} : study_objectives(st))
      if (std::find(metrics.begin(), metrics.end(), o) == metrics.end()) metrics.push_back(o);
  const bool percent = lmclip_maps(metrics);
  if (percent) metrics = {"map", "map_head", "map_middle", "map_tail"};
  const std::string objective_label = options.objective.value_or(studies.size() == 1 ? studies[0].objective : "each study's objective");

  if (options.format == "json") {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& r : all) {
      nlohmann::json o = {{"study", r.study}, {"trial", r.trial}, {"status", r.status}, {"params", r.params},
                          {"epoch", r.epoch}, {"value", r.value}};
      for (const auto& m : metrics) {
        const auto v = db::epoch_value(r.record, m);
        o[m] = v ? nlohmann::json(*v) : nlohmann::json(nullptr);
      }
      out.push_back(o);
    }
    return out.dump(2) + "\n";
  }
  std::vector<std::string> header = {"study", "trial", "status", "epoch"};
  header.insert(header.end(), metrics.begin(), metrics.end());
  header.insert(header.end(), names.begin(), names.end());
  auto row_cells = [&](const Row& r, bool shown) {
    std::vector<std::string> cells = {r.study, std::to_string(r.trial), r.status, std::to_string(r.epoch)};
    for (const auto& m : metrics) cells.push_back(metric_cell(db::epoch_value(r.record, m), shown, percent));
    for (const auto& n : names) cells.push_back(r.params.contains(n) ? param_text(r.params[n]) : "");
    return cells;
  };
  if (options.format == "csv") {
    std::vector<std::vector<std::string>> body;
    for (const auto& r : all) body.push_back(row_cells(r, false));
    return render_csv(header, body);
  }
  const bool md = options.format == "markdown";
  std::ostringstream s;
  // Table 3: the best hyperparameters per study.
  s << (md ? "### " : "") << "Best configuration per study (Table 3), by " << objective_label << "\n\n";
  {
    std::vector<std::string> h = {"study"};
    h.insert(h.end(), names.begin(), names.end());
    h.push_back("trial");
    std::vector<std::vector<std::string>> body;
    for (const auto& [st, rows] : per_study) {
      if (rows.empty()) continue;
      std::vector<std::string> cells = {st.name};
      for (const auto& n : names) cells.push_back(rows[0].params.contains(n) ? param_text(rows[0].params[n]) : "");
      cells.push_back(std::to_string(rows[0].trial));
      body.push_back(cells);
    }
    s << render(h, body, md) << "\n";
  }
  // Table 1: the best trial's row.
  s << (md ? "### " : "") << (percent ? "mAP (%) of the best trial's best epoch (Table 1)" : "The best trial's best epoch")
    << "\n\n";
  {
    std::vector<std::vector<std::string>> body;
    for (const auto& [st, rows] : per_study) {
      if (rows.empty()) continue;
      std::vector<std::string> cells = {st.name};
      for (const auto& m : metrics) cells.push_back(metric_cell(db::epoch_value(rows[0].record, m), true, percent));
      cells.push_back(std::to_string(rows[0].epoch));
      body.push_back(std::move(cells));
    }
    std::vector<std::string> h = {"study"};
    if (percent) h.insert(h.end(), {"Total", "Head", "Middle", "Tail"});
    else h.insert(h.end(), metrics.begin(), metrics.end());
    h.push_back("epoch");
    s << render(h, body, md) << "\n";
  }
  s << (md ? "### " : "") << "Top " << (options.top > 0 ? std::to_string(options.top) : std::string("all"))
    << " trials" << (percent ? " (mAP in %)" : "") << "\n\n";
  std::vector<std::vector<std::string>> body;
  for (const auto& r : all) body.push_back(row_cells(r, true));
  s << render(header, body, md);
  return s.str();
}

namespace {

// Whether a sweep holds the database now: a lease renewed within its stale_after, by a
// process that exists when it runs on this host.
struct SweepLiveness {
  std::optional<db::LeaseInfo> lease;
  bool alive = false;
  double silent_seconds = 0;  // since the lease's last heartbeat
};

SweepLiveness sweep_liveness(db::Store& store) {
  SweepLiveness l;
  l.lease = store.lease();
  if (!l.lease) return l;
  l.silent_seconds = std::max(0.0, db::unix_now() - l.lease->heartbeat_at);
  l.alive = l.silent_seconds < l.lease->stale_after &&
            (l.lease->host != host_name() || process_alive(l.lease->pid));
  return l;
}

std::string ago(double seconds) { return fmt::format("{:.0f} s ago", std::max(0.0, seconds)); }

nlohmann::json running_json(db::Store& store, const db::RunningTrial& r, bool job_alive) {
  nlohmann::json ranks = nlohmann::json::array();
  std::optional<double> heard;
  for (const auto& k : store.trial_ranks(r.trial.id)) {
    ranks.push_back({{"rank", k.rank}, {"host", k.host}, {"pid", k.pid}, {"heard_at", k.heard_at},
                     {"heard_seconds_ago", db::unix_now() - k.heard_at}});
    heard = std::max(heard.value_or(0.0), k.heard_at);
  }
  return {{"trial", r.trial.number},
          {"epoch", r.last_epoch ? nlohmann::json(r.last_epoch->epoch) : nlohmann::json(nullptr)},
          {"host", r.trial.host},
          {"rank_group", r.trial.rank_group ? nlohmann::json(*r.trial.rank_group) : nlohmann::json(nullptr)},
          {"ranks", ranks},
          {"last_heard_at", heard ? nlohmann::json(*heard) : nlohmann::json(nullptr)},
          {"job_alive", job_alive}};
}

std::string running_line(const nlohmann::json& r, const SweepLiveness& live) {
  std::string ranks;
  for (const auto& k : r["ranks"])
    ranks += fmt::format("{}{} pid {}", ranks.empty() ? "" : ", ", k["host"].get<std::string>(), k["pid"].get<int64_t>());
  std::string line = fmt::format("  running: trial {} at epoch {} on group {}", r["trial"].get<int64_t>(),
                                 r["epoch"].is_null() ? 0 : r["epoch"].get<int64_t>(),
                                 r["rank_group"].is_null() ? std::string("?") : std::to_string(r["rank_group"].get<int>()));
  if (!ranks.empty()) line += " (" + ranks + ")";
  if (!r["last_heard_at"].is_null()) line += ", heard from " + ago(db::unix_now() - r["last_heard_at"].get<double>());
  if (!live.alive)
    line += live.lease ? fmt::format("; its sweep is gone (lease not renewed for {:.0f} s): the next sweep requeues it",
                                     live.silent_seconds)
                       : "; no sweep is running: the next one requeues it";
  return line + "\n";
}

}  // namespace

std::string status_report(db::Store& store, const StatusOptions& options) {
  LMSWEEP_CHECK(options.format == "table" || options.format == "json", "--format = '{}': valid: table, json",
                options.format);
  const auto studies = selected_studies(store, options.study);
  const SweepLiveness live = sweep_liveness(store);
  nlohmann::json out = nlohmann::json::array();
  std::ostringstream s;
  if (options.format == "table" && live.lease)
    s << fmt::format("sweep: {} holds the database, heard from {}{}\n", live.lease->describe(),
                     ago(live.silent_seconds),
                     live.alive                                        ? ""
                     : live.silent_seconds >= live.lease->stale_after ? " (gone: its lease is stale)"
                                                                       : " (gone: its process has ended)");
  for (const auto& st : studies) {
    // A `train` run holds no lease: its running trial is taken at its word.
    SweepLiveness study_live = live;
    if (st.method == "train") study_live.alive = true;
    const auto c = store.status_counts(st.id);
    const auto running = store.running_trials(st.id);
    const std::string objective = st.objective.empty() ? "map" : st.objective;
    const auto best = store.best_trials(st.id, db::BestQuery{objective, 1, false});
    const int64_t remaining = c.pending + c.running + c.interrupted;
    std::optional<double> eta;
    if (remaining == 0) eta = 0;
    else if (c.mean_completed_trial_seconds && study_live.alive)  // else nothing is running it
      eta = *c.mean_completed_trial_seconds * static_cast<double>(remaining) /
            static_cast<double>(std::max<int64_t>(1, static_cast<int64_t>(running.size())));
    nlohmann::json j = {{"study", st.name},         {"completed", c.completed}, {"running", c.running},
                        {"pending", c.pending},     {"failed", c.failed},       {"pruned", c.pruned},
                        {"interrupted", c.interrupted}, {"total", c.total()},   {"objective", objective}};
    j["eta_seconds"] = eta ? nlohmann::json(*eta) : nlohmann::json(nullptr);
    j["sweep_alive"] = study_live.alive;
    if (live.lease)
      j["sweep"] = {{"job", live.lease->job}, {"host", live.lease->host}, {"pid", live.lease->pid},
                    {"heartbeat_at", live.lease->heartbeat_at}, {"alive", live.alive}};
    nlohmann::json run = nlohmann::json::array();
    for (const auto& r : running) run.push_back(running_json(store, r, study_live.alive));
    j["running_trials"] = run;
    if (!best.empty())
      j["best"] = {{"trial", best[0].trial.number}, {"epoch", best[0].epoch.epoch}, {"value", best[0].value}};
    else
      j["best"] = nullptr;
    out.push_back(j);

    s << fmt::format("study '{}' ({}, {} trials): completed {}, running {}, pending {}, failed {}, pruned {}{}\n",
                     st.name, st.method, c.total(), c.completed, c.running, c.pending, c.failed, c.pruned,
                     c.interrupted ? fmt::format(", interrupted {}", c.interrupted) : "");
    for (const auto& r : run) s << running_line(r, study_live);
    if (!best.empty())
      s << fmt::format("  best so far: {} {} (trial {}, epoch {})\n", objective,
                       lmclip_maps({objective}) ? pct(best[0].value) + " %" : fmt::format("{:.4g}", best[0].value),
                       best[0].trial.number, best[0].epoch.epoch);
    if (eta) {
      const int64_t e = std::llround(*eta);
      s << fmt::format("  ETA: {}\n", e >= 3600 ? fmt::format("{}h{:02}m", e / 3600, (e % 3600) / 60)
                                                 : fmt::format("{}m{:02}s", e / 60, e % 60));
    }
  }
  if (options.format == "json") return (options.study ? out[0] : out).dump(2) + "\n";
  return s.str();
}

}  // namespace lmsweep::cli
