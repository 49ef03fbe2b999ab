#include "report/html.h"

#include <algorithm>
#include <ctime>

#include <fmt/format.h>

namespace lmsweep::report {

std::string base64(const std::string& bytes) {
  static const char* const kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const auto b = [&](size_t k) { return k < bytes.size() ? static_cast<unsigned char>(bytes[k]) : 0u; };
    const unsigned v = (b(i) << 16) | (b(i + 1) << 8) | b(i + 2);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? kAlphabet[(v >> 6) & 63] : '=';
    out += i + 2 < bytes.size() ? kAlphabet[v & 63] : '=';
  }
  return out;
}

std::string html_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

namespace {

std::string cell(const std::optional<double>& v, bool percent) {
  if (!v) return "-";
  return percent ? fmt::format("{:.2f}", *v * 100) : fmt::format("{:.4g}", *v);
}

std::string param_text(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) return fmt::format("{:.4g}", v.get<double>());
  return v.dump();
}

std::vector<std::string> param_names(const StudyData& d) {
  std::vector<std::string> names;
  for (const auto& dim : d.space.dimensions()) names.push_back(dim.name);
  return names;
}

std::string table(const std::vector<std::string>& head, const std::vector<std::vector<std::string>>& rows) {
  std::string s = "<table>\n<tr>";
  for (const auto& h : head) s += "<th>" + html_escape(h) + "</th>";
  s += "</tr>\n";
  for (const auto& r : rows) {
    s += "<tr>";
    for (const auto& c : r) s += "<td>" + html_escape(c) + "</td>";
    s += "</tr>\n";
  }
  return s + "</table>\n";
}

std::string summary_tables(const PageInputs& in) {
  const StudyData& d = *in.data;
  const auto& c = in.counts;
  std::string s = "<h2>Trials</h2>\n" +
                  table({"completed", "pruned", "failed", "running", "pending", "interrupted", "total", "epochs"},
                        {{std::to_string(c.completed), std::to_string(c.pruned), std::to_string(c.failed),
                          std::to_string(c.running), std::to_string(c.pending), std::to_string(c.interrupted),
                          std::to_string(c.total()), std::to_string(c.epochs_recorded)}});
  const auto order = ranked_trials(d);
  if (order.empty()) return s;
  const TrialData& best = *order.front();
  const db::EpochRecord& e = *best_epoch(best, d.objective());
  const auto names = param_names(d);
  std::vector<std::string> head = {"study"}, row = {d.study.name};
  for (const auto& n : names) {
    head.push_back(n);
    row.push_back(best.params.contains(n) ? param_text(best.params[n]) : "-");
  }
  s += "<h2>Best hyperparameters (Table 3)</h2>\n" + table(head, {row});
  const bool lmclip = lmclip_maps(d.objectives);
  std::vector<std::string> metrics = lmclip ? std::vector<std::string>{"map", "map_head", "map_middle", "map_tail",
                                                                        "map_single", "map_multi"}
                                            : d.objectives;
  head = {"trial", "epoch"};
  row = {std::to_string(best.info.number), std::to_string(e.epoch)};
  for (const auto& m : metrics) {
    head.push_back(lmclip ? m + " (%)" : m);
    row.push_back(cell(db::epoch_value(e, m), lmclip));
  }
  s += fmt::format("<h2>The best trial by {} (Table 1)</h2>\n", html_escape(d.objective())) + table(head, {row});
  head = {"rank", "trial", "status", "epoch"};
  head.insert(head.end(), names.begin(), names.end());
  for (const auto& m : metrics) head.push_back(lmclip ? m + " (%)" : m);
  std::vector<std::vector<std::string>> rows;
  for (size_t i = 0; i < order.size() && static_cast<int>(i) < in.top; ++i) {
    const TrialData& t = *order[i];
    const auto& be = *best_epoch(t, d.objective());
    std::vector<std::string> r = {std::to_string(i + 1), std::to_string(t.info.number),
                                  std::string(db::to_string(t.info.status)), std::to_string(be.epoch)};
    for (const auto& n : names) r.push_back(t.params.contains(n) ? param_text(t.params[n]) : "-");
    for (const auto& m : metrics) r.push_back(cell(db::epoch_value(be, m), lmclip));
    rows.push_back(std::move(r));
  }
  return s + fmt::format("<h2>Top {} trials</h2>\n", rows.size()) + table(head, rows);
}

std::string figure_section(const PageFigure& pf) {
  const Figure& f = *pf.figure;
  std::string files;
  for (const auto& [name, content] : f.data) files += fmt::format(" · <a href=\"{0}\">{0}</a>", html_escape(name));
  return fmt::format(
      "<section class=\"figure\" id=\"{0}\">\n<h2>{1}</h2>\n<img class=\"figure\" alt=\"{1}\" width=\"{2}\" "
      "src=\"data:image/png;base64,{3}\">\n<p>{4}</p>\n<p class=\"files\"><a href=\"{0}.png\">PNG</a> · <a "
      "href=\"{0}.svg\">SVG</a> · <a href=\"{0}.pdf\">PDF</a>{5} · <a href=\"{0}.gp\">{0}.gp</a></p>\n</section>\n",
      html_escape(f.name), html_escape(f.title), std::min(f.width, 1400), pf.png_base64, html_escape(f.caption), files);
}

constexpr const char* kStyle =
    "body{font-family:sans-serif;margin:2em;max-width:1500px;color:#222}"
    "table{border-collapse:collapse;margin:0.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;"
    "text-align:right}th{background:#f3f3f3}img.figure{max-width:100%;height:auto;border:1px solid #eee}"
    "p.files{font-size:0.85em;color:#666}section.figure{margin-bottom:2.5em}";

// Marks the body with how many figures loaded (a headless browser's check reads them).
constexpr const char* kLoadCheck =
    "<script>window.addEventListener('load',function(){var f=document.querySelectorAll('img.figure'),n=0;"
    "f.forEach(function(i){if(i.complete&&i.naturalWidth>0)n++;});document.body.setAttribute('data-figures',f.length);"
    "document.body.setAttribute('data-figures-loaded',n);});</script>\n";

}  // namespace

std::string render_page(const PageInputs& in) {
  const StudyData& d = *in.data;
  std::string objectives;
  for (const auto& o : d.objectives) objectives += (objectives.empty() ? "" : ", ") + o;
  const std::time_t now = std::time(nullptr);
  char when[64];
  std::strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  std::string s = fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>lmsweep report: {0}</title>\n"
      "<style>{1}</style>\n</head>\n<body>\n<h1>Study {0}</h1>\n<p>Database {2} · method {3} · scheduler {4} · "
      "objective{5} {6} · {7} trials · made {8}</p>\n",
      html_escape(d.study.name), kStyle, html_escape(in.database), html_escape(d.study.method),
      html_escape(d.study.scheduler), d.objectives.size() > 1 ? "s" : "", html_escape(objectives), d.trials.size(), when);
  s += summary_tables(in);
  if (!in.figures.empty()) {
    s += "<h2>Figures</h2>\n<ul>\n";
    for (const auto& pf : in.figures)
      s += fmt::format("<li><a href=\"#{}\">{}</a></li>\n", html_escape(pf.figure->name), html_escape(pf.figure->title));
    s += "</ul>\n";
  }
  for (const auto& pf : in.figures) s += figure_section(pf);
  if (!in.skipped.empty()) {
    s += "<h2>Left out</h2>\n<ul>\n";
    for (const auto& why : in.skipped) s += "<li>" + html_escape(why) + "</li>\n";
    s += "</ul>\n";
  }
  return s + kLoadCheck + "</body>\n</html>\n";
}

}  // namespace lmsweep::report
