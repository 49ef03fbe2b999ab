#include "report/report.h"

#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "common/error.h"
#include "common/files.h"
#include "common/staged_output.h"
#include "report/figures.h"
#include "report/html.h"
#include "report/importance.h"
#include "sweep/command_trial.h"

namespace lmsweep::report {
namespace {

namespace fs = std::filesystem;

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  LMSWEEP_CHECK(in.is_open(), "report: {} was not written", path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string find_gnuplot(const std::string& word) {
  try {
    return sweep::find_program(word);
  } catch (const Error& e) {
    throw_error("lmsweep report draws its figures with gnuplot: {} (apt-get install gnuplot-nox)", e.what());
  }
}

// Runs `gnuplot script` in `dir`, its output appended to dir/gnuplot.log.
void run_gnuplot(const std::string& gnuplot, const std::string& dir, const std::string& script) {
  const std::string log = dir + "/gnuplot.log";
  const pid_t pid = fork();
  LMSWEEP_CHECK(pid >= 0, "report: cannot start {}", gnuplot);
  if (pid == 0) {
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    if (chdir(dir.c_str()) != 0) _exit(126);
    execl(gnuplot.c_str(), gnuplot.c_str(), script.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  LMSWEEP_CHECK(code == 0, "report: {} {} failed (exit {}): {}", gnuplot, script, code, sweep::last_line_of(log));
}

void check_reportable(const StudyData& d, db::Store& store) {
  LMSWEEP_CHECK(!d.trials.empty(), "{}: study '{}' has no trial yet: run the sweep first", store.path(), d.study.name);
  const auto c = store.status_counts(d.study.id);
  LMSWEEP_CHECK(c.completed > 0,
                "{}: study '{}' has no completed trial yet ({} running, {} pruned, {} failed, {} pending): "
                "`lmsweep status` shows its progress; report once a trial has completed",
                store.path(), d.study.name, c.running, c.pruned, c.failed, c.pending);
}

// The best trial by the objective, its best epoch, its per-class results, the importances.
FigureInputs figure_inputs(db::Store& store, const StudyData& d, std::vector<std::string>* skipped) {
  FigureInputs in;
  const auto ranked = ranked_trials(d);
  if (!ranked.empty()) {
    in.best_trial = ranked.front();
    in.best_epoch = best_epoch(*in.best_trial, d.objective());
    in.classes = class_metrics(store, *in.best_trial, *in.best_epoch);
  }
  try {
    for (const auto& p : param_importances(d)) in.importance.emplace_back(p.param, p.importance);
  } catch (const Error& e) {
    skipped->push_back(fmt::format("importance: {}", e.what()));
  }
  return in;
}

}  // namespace

ReportSummary write_report(db::Store& store, const ReportOptions& o) {
  const StudyData d = load_study(store, o.study);
  check_reportable(d, store);
  const std::string gnuplot = find_gnuplot(o.gnuplot);
  StagedOutput out(o.out_dir, StagedOutput::Kind::Directory, "--out");
  ReportSummary summary;
  const FigureInputs inputs = figure_inputs(store, d, &summary.skipped);
  const auto figures = make_figures(d, inputs, &summary.skipped);
  summary.skipped.erase(std::unique(summary.skipped.begin(), summary.skipped.end()), summary.skipped.end());
  PageInputs page;
  page.data = &d;
  page.database = store.path();
  page.counts = store.status_counts(d.study.id);
  page.top = o.top;
  page.skipped = summary.skipped;
  const std::string source = fmt::format("{} (study {})", store.path(), d.study.name);
  for (size_t i = 0; i < figures.size(); ++i) {
    const Figure& f = figures[i];
    if (o.progress) o.progress(fmt::format("[{}/{}] {}", i + 1, figures.size(), f.name));
    for (const auto& [name, content] : f.data) write_text_file(out.path() + "/" + name, content, "report");
    write_text_file(out.path() + "/" + f.name + ".gp", gnuplot_script(f, source), "report");
    run_gnuplot(gnuplot, out.path(), f.name + ".gp");
    page.figures.push_back({&f, base64(read_bytes(out.path() + "/" + f.name + ".png"))});
    summary.figures.push_back(f.name);
  }
  write_text_file(out.path() + "/index.html", render_page(page), "report");
  out.commit();
  summary.index_html = (fs::path(o.out_dir) / "index.html").string();
  return summary;
}

}  // namespace lmsweep::report
