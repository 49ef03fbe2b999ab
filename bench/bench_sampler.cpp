// The search methods on standard test functions: the median (over seeds) best value found after
// 15, 30 and 60 evaluations (and the mean after 60), for random, Sobol and TPE points
// (sweep/point_sampler.h, tpe.h), and for Optuna's TPESampler on the same functions with the same budget
// when `optuna` is importable, side by side in one run. The functions are maximised: Branin and
// Hartmann-6 negated or as usual (maxima -0.397887 and 3.32237), and a 5-D function with the
// paper's dimensions and scales (maximum 0).
//   bench_sampler [--evals 60] [--seeds 20] [--python python3] [--direct]
// Each search is a real sweep: `lmsweep sweep` with trial = command, its trials this program
// in --evaluate mode (one JSON epoch line with the value), its points from the coordinator and
// the database. --direct calls the sampler in this process instead (the same points: a check
// of the sweep's path, and seconds instead of minutes).
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <functional>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "db/store.h"
#include "sweep/point_sampler.h"
#include "sweep/tpe.h"

using namespace lmsweep::sweep;

namespace {

struct Function {
  std::string name;
  SearchSpace space;
  std::function<double(const Point&)> f;
};

double get(const Point& p, const std::string& name) { return find_value(p, name)->as_double(); }

Dimension real(const std::string& name, double low, double high, bool log = false) {
  Dimension d;
  d.name = name;
  d.dist = log ? Distribution::LogUniform : Distribution::Uniform;
  d.low = low;
  d.high = high;
  return d;
}

std::vector<Function> functions() {
  std::vector<Function> out;
  out.push_back({"branin", SearchSpace({real("x", -5, 10), real("y", 0, 15)}), [](const Point& p) {
                   const double x = get(p, "x"), y = get(p, "y");
                   const double b = 5.1 / (4 * M_PI * M_PI), c = 5 / M_PI, s = 1 / (8 * M_PI);
                   return -(std::pow(y - b * x * x + c * x - 6, 2) + 10 * (1 - s) * std::cos(x) + 10);
                 }});
  std::vector<Dimension> h;
  for (int i = 0; i < 6; ++i) h.push_back(real("x" + std::to_string(i), 0, 1));
  out.push_back({"hartmann6", SearchSpace(h), [](const Point& p) {
                   static const double A[4][6] = {{10, 3, 17, 3.5, 1.7, 8}, {0.05, 10, 17, 0.1, 8, 14},
                                                  {3, 3.5, 1.7, 10, 17, 8}, {17, 8, 0.05, 10, 0.1, 14}};
                   static const double P[4][6] = {{1312, 1696, 5569, 124, 8283, 5886}, {2329, 4135, 8307, 3736, 1004, 9991},
                                                  {2348, 1451, 3522, 2883, 3047, 6650}, {4047, 8828, 8732, 5743, 1091, 381}};
                   static const double alpha[4] = {1.0, 1.2, 3.0, 3.2};
                   double v = 0;
                   for (int i = 0; i < 4; ++i) {
                     double e = 0;
                     for (int j = 0; j < 6; ++j) e += A[i][j] * std::pow(get(p, "x" + std::to_string(j)) - P[i][j] * 1e-4, 2);
                     v += alpha[i] * std::exp(-e);
                   }
                   return v;
                 }});
  Dimension batch;
  batch.name = "batch-size";
  batch.dist = Distribution::Choice;
  batch.values = {8, 16, 32, 64};
  out.push_back({"paper5d",
                 SearchSpace({batch, real("gamma-neg", 2, 12), real("lambda", 0.1, 10, true), real("s", 1, 2),
                              real("label-smoothing", 0.01, 0.1, true)}),
                 [](const Point& p) {
                   const double b = static_cast<double>(find_value(p, "batch-size")->as_int());
                   return -(std::pow(std::log2(b) - 5, 2) + std::pow((get(p, "gamma-neg") - 9) / 3, 2) +
                            4 * std::pow(std::log10(get(p, "lambda")) - 0.3, 2) + std::pow(3 * (get(p, "s") - 1.2), 2) +
                            4 * std::pow(std::log10(get(p, "label-smoothing")) - std::log10(0.03), 2));
                 }});
  return out;
}

// Best-so-far after each evaluation of one sequential search, the sampler called here.
std::vector<double> run_direct(const Function& fn, SamplingMethod method, uint64_t seed, int evals) {
  SweepConfig c;
  c.name = "bench";
  c.method = method;
  c.seed = seed;
  c.trials = evals;
  const PointSampler design(fn.space, c);
  std::vector<TpeObservation> history;
  std::vector<double> curve;
  double best = -INFINITY;
  for (int k = 0; k < evals; ++k) {
    const Point p = method == SamplingMethod::Tpe
                        ? suggest_tpe(fn.space, history, TpeOptions{}, design.seed(k), design.point(k))
                        : design.point(k);
    const double v = fn.f(p);
    best = std::max(best, v);
    curve.push_back(best);
    history.push_back({p, TpeObservation::State::Completed, v, 1, k});
  }
  return curve;
}

// The [space] lines of a function, as a sweep config writes them.
std::string space_lines(const SearchSpace& space) {
  std::string out;
  for (const auto& d : space.dimensions()) {
    if (d.dist == Distribution::Choice) {
      std::string values;
      for (const auto& v : d.values) values += (values.empty() ? "" : ", ") + to_flag_value(v);
      out += fmt::format("{} = choice({})\n", d.name, values);
    } else {
      out += fmt::format("{} = {}({:.17g}, {:.17g})\n", d.name, to_string(d.dist), d.low, d.high);
    }
  }
  return out;
}

// The same search as a sweep: `lmsweep sweep` (one rank) with this program as the command.
std::vector<double> run_sweep(const Function& fn, SamplingMethod method, uint64_t seed, int evals,
                              const std::string& self, const std::filesystem::path& dir) {
  const std::string study = fmt::format("{}-{}-{}", fn.name, to_string(method), seed);
  std::string command = self + " --evaluate " + fn.name;
  for (const auto& d : fn.space.dimensions()) command += fmt::format(" {0}={{{0}}}", d.name);
  std::ofstream(dir / "sweep.ini") << fmt::format(
      "[sweep]\nname = {}\nmethod = {}\ntrials = {}\nseed = {}\ntrial = command\nobjective = value\n"
      "command = {}\n[space]\n{}[train]\nepochs = 1\n", study, to_string(method), evals, seed, command,
      space_lines(fn.space));
  const std::string run = fmt::format("cd {} && {} sweep --config sweep.ini --db bench.db > sweep.log 2>&1",
                                      dir.string(), LMSWEEP_EXE);
  if (std::system(run.c_str()) != 0)
    throw std::runtime_error("lmsweep sweep failed: see " + (dir / "sweep.log").string());
  auto store = lmsweep::db::Store::open_read_only((dir / "bench.db").string());
  std::vector<double> curve;
  double best = -INFINITY;
  for (const auto& t : store.trials(store.find_study(study)->id)) {
    for (const auto& e : store.epochs(t.id)) best = std::max(best, lmsweep::db::epoch_value(e, "value").value_or(best));
    curve.push_back(best);
  }
  return curve;
}

// --evaluate FUNCTION name=value ...: a command trial's program; prints its one epoch line.
int evaluate(int argc, char** argv) {
  for (const auto& fn : functions()) {
    if (fn.name != argv[2]) continue;
    Point p;
    for (int i = 3; i < argc; ++i) {
      const std::string kv = argv[i];
      p.emplace_back(kv.substr(0, kv.find('=')), parse_param_token(kv.substr(kv.find('=') + 1)));
    }
    std::printf("{\"epoch\": 1, \"value\": %.17g}\n", fn.f(p));
    return 0;
  }
  std::fprintf(stderr, "bench_sampler --evaluate: no function '%s'\n", argv[2]);
  return 2;
}

double median_at(const std::vector<std::vector<double>>& runs, int evals) {
  std::vector<double> v;
  for (const auto& r : runs) v.push_back(r.at(static_cast<size_t>(evals - 1)));
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

double mean_at(const std::vector<std::vector<double>>& runs, int evals) {
  double s = 0;
  for (const auto& r : runs) s += r.at(static_cast<size_t>(evals - 1));
  return s / static_cast<double>(runs.size());
}

// The median of a resample (with replacement, seeded) of the values after `evals`.
double resampled_median(const std::vector<std::vector<double>>& runs, int evals, uint64_t& state) {
  std::vector<double> v;
  for (size_t i = 0; i < runs.size(); ++i) {
    state = splitmix64(state);
    v.push_back(runs[state % runs.size()].at(static_cast<size_t>(evals - 1)));
  }
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

// lmsweep's median minus Optuna's after the whole budget, with a 95 % bootstrap interval
// (2000 resamples of each side's seeds): how far apart the two are beyond the seeds' spread.
void print_difference(const std::string& function, const std::vector<std::vector<double>>& ours,
                      const std::vector<std::vector<double>>& theirs, int evals) {
  uint64_t state = 12345;
  std::vector<double> d;
  for (int b = 0; b < 2000; ++b) d.push_back(resampled_median(ours, evals, state) - resampled_median(theirs, evals, state));
  std::sort(d.begin(), d.end());
  const double diff = median_at(ours, evals) - median_at(theirs, evals);
  std::cout << fmt::format("{:<10} lmsweep-tpe - optuna-tpe, median after {}: {:+.4f} (95 % bootstrap interval {:+.4f} "
                           ".. {:+.4f})\n", function, evals, diff, d[50], d[1949]);
  std::cout << nlohmann::json{{"bench", "sampler_difference"}, {"function", function}, {"median_difference", diff},
                              {"interval_95", {d[50], d[1949]}}}.dump() << "\n";
}

// Optuna's runs, {function: {sampler: runs}}; empty when optuna is not importable.
std::map<std::string, std::map<std::string, std::vector<std::vector<double>>>> optuna_runs(
    const std::string& python, int evals, int seeds) {
  std::map<std::string, std::map<std::string, std::vector<std::vector<double>>>> out;
  const std::string cmd = fmt::format("{} -c 'import optuna' 2>/dev/null && {} {}/sampler_functions.py {} {}", python,
                                      python, LMSWEEP_BENCH_SOURCE_DIR, evals, seeds);
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  std::string text;
  char buf[65536];
  while (size_t n = fread(buf, 1, sizeof(buf), p)) text.append(buf, n);
  pclose(p);
  size_t at = 0;
  while (at < text.size()) {
    const size_t end = text.find('\n', at);
    const auto j = nlohmann::json::parse(text.substr(at, end - at));
    out[j["function"]][j["sampler"]] = j["runs"].get<std::vector<std::vector<double>>>();
    at = end == std::string::npos ? text.size() : end + 1;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 3 && std::string(argv[1]) == "--evaluate") return evaluate(argc, argv);
  int evals = 60, seeds = 20;
  std::string python = "python3";
  bool direct = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--direct") direct = true;
    else if (a == "--evals" && i + 1 < argc) evals = std::stoi(argv[++i]);
    else if (a == "--seeds" && i + 1 < argc) seeds = std::stoi(argv[++i]);
    else if (a == "--python" && i + 1 < argc) python = argv[++i];
  }
  const std::string self = std::filesystem::canonical("/proc/self/exe").string();
  const auto dir = std::filesystem::temp_directory_path() / fmt::format("lmsweep-bench-sampler-{}", ::getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  int identical = 0, compared = 0;
  auto search = [&](const Function& fn, SamplingMethod m, uint64_t seed) {
    auto here = run_direct(fn, m, seed, evals);
    if (direct) return here;
    auto swept = run_sweep(fn, m, seed, evals, self, dir);
    ++compared;
    identical += swept == here;
    return swept;
  };
  std::cout << (direct ? "sampler called directly (--direct)\n"
                       : "each search a sweep: lmsweep sweep, trial = command (this program --evaluate)\n");
  const std::vector<int> at = {std::min(15, evals), std::min(30, evals), evals};
  const auto optuna = optuna_runs(python, evals, seeds);
  if (optuna.empty()) std::cout << "(optuna is not importable by " << python << ": its rows are left out)\n";
  std::cout << fmt::format("median best of {} seeds after {}, {}, {} evaluations (maximised)\n", seeds, at[0], at[1],
                           at[2]);
  for (const auto& fn : functions()) {
    std::map<std::string, std::vector<std::vector<double>>> rows;
    for (auto [name, m] : {std::pair{"random", SamplingMethod::Random}, {"sobol", SamplingMethod::Sobol},
                           {"lmsweep-tpe", SamplingMethod::Tpe}})
      for (int s = 1; s <= seeds; ++s) rows[name].push_back(search(fn, m, static_cast<uint64_t>(s)));
    if (optuna.count(fn.name))
      for (const auto& [name, runs] : optuna.at(fn.name)) rows[name] = runs;
    for (const auto& [name, runs] : rows) {
      nlohmann::json j = {{"bench", "sampler"}, {"function", fn.name}, {"sampler", name}, {"seeds", seeds}};
      std::string line = fmt::format("{:<10} {:<14}", fn.name, name);
      for (int n : at) {
        const double m = median_at(runs, n);
        j["median_best_" + std::to_string(n)] = m;
        line += fmt::format("  {:>3}: {:>9.4f}", n, m);
      }
      // Medians of bimodal outcomes (a choice dimension stuck on the wrong value) move a lot
      // with the seeds: the mean after the whole budget too.
      j["mean_best_" + std::to_string(evals)] = mean_at(runs, evals);
      line += fmt::format("   mean {:>3}: {:>9.4f}", evals, mean_at(runs, evals));
      std::cout << line << "\n" << j.dump() << "\n";
    }
    if (rows.count("optuna-tpe")) print_difference(fn.name, rows.at("lmsweep-tpe"), rows.at("optuna-tpe"), evals);
  }
  if (!direct)
    std::cout << fmt::format("sweeps whose curve equals the sampler called directly: {} of {}\n", identical, compared);
  std::filesystem::remove_all(dir);
  return 0;
}
