// The search methods on standard test functions: the median (over seeds) best value found after
// 15, 30 and 60 evaluations (and the mean after 60), for random, Sobol and TPE points
// (sweep/point_sampler.h, tpe.h; lmsweep-tpe with lmsweep's defaults, lmsweep-tpe-optuna with
// tpe_defaults = optuna), and for Optuna's TPESampler on the same functions with the same budget
// when `optuna` is importable, side by side in one run. The functions are maximised: Branin and
// Hartmann-6 negated or as usual (maxima -0.397887 and 3.32237), and a 5-D function with the
// paper's dimensions and scales (maximum 0); --functions all adds three that lmsweep's TPE
// defaults were not chosen on: Hartmann-3 (3.86278), -log(1 + Rosenbrock-4) on [-2, 2]^4 (0) and
// a 6-D space of two choices and four reals, two of them log scale (0).
//   bench_sampler [--evals 60] [--seeds 20] [--first-seed 1] [--functions benchmark|all]
//                 [--python python3] [--direct]
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

using Runs = std::vector<std::vector<double>>;  // per seed, the best so far after each evaluation

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

Dimension choice(const std::string& name, const std::vector<int64_t>& values) {
  Dimension d;
  d.name = name;
  d.dist = Distribution::Choice;
  for (auto v : values) d.values.emplace_back(v);
  return d;
}

// Hartmann's family: sum_i alpha_i exp(-sum_j A_ij (x_j - P_ij)^2) on [0, 1]^d.
template <size_t D>
double hartmann(const Point& p, const double (&A)[4][D], const double (&P)[4][D]) {
  static const double alpha[4] = {1.0, 1.2, 3.0, 3.2};
  double v = 0;
  for (size_t i = 0; i < 4; ++i) {
    double e = 0;
    for (size_t j = 0; j < D; ++j) e += A[i][j] * std::pow(get(p, "x" + std::to_string(j)) - P[i][j] * 1e-4, 2);
    v += alpha[i] * std::exp(-e);
  }
  return v;
}

std::vector<Dimension> unit_cube(int d, double low = 0, double high = 1) {
  std::vector<Dimension> out;
  for (int i = 0; i < d; ++i) out.push_back(real("x" + std::to_string(i), low, high));
  return out;
}

// The three: Branin, Hartmann-6 and the paper's 5-D space.
std::vector<Function> benchmark_functions() {
  std::vector<Function> out;
  out.push_back({"branin", SearchSpace({real("x", -5, 10), real("y", 0, 15)}), [](const Point& p) {
                   const double x = get(p, "x"), y = get(p, "y");
                   const double b = 5.1 / (4 * M_PI * M_PI), c = 5 / M_PI, s = 1 / (8 * M_PI);
                   return -(std::pow(y - b * x * x + c * x - 6, 2) + 10 * (1 - s) * std::cos(x) + 10);
                 }});
  out.push_back({"hartmann6", SearchSpace(unit_cube(6)), [](const Point& p) {
                   static const double A[4][6] = {{10, 3, 17, 3.5, 1.7, 8}, {0.05, 10, 17, 0.1, 8, 14},
                                                  {3, 3.5, 1.7, 10, 17, 8}, {17, 8, 0.05, 10, 0.1, 14}};
                   static const double P[4][6] = {{1312, 1696, 5569, 124, 8283, 5886}, {2329, 4135, 8307, 3736, 1004, 9991},
                                                  {2348, 1451, 3522, 2883, 3047, 6650}, {4047, 8828, 8732, 5743, 1091, 381}};
                   return hartmann(p, A, P);
                 }});
  out.push_back({"paper5d",
                 SearchSpace({choice("batch-size", {8, 16, 32, 64}), real("gamma-neg", 2, 12), real("lambda", 0.1, 10, true), real("s", 1, 2),
                              real("label-smoothing", 0.01, 0.1, true)}),
                 [](const Point& p) {
                   const double b = static_cast<double>(find_value(p, "batch-size")->as_int());
                   return -(std::pow(std::log2(b) - 5, 2) + std::pow((get(p, "gamma-neg") - 9) / 3, 2) +
                            4 * std::pow(std::log10(get(p, "lambda")) - 0.3, 2) + std::pow(3 * (get(p, "s") - 1.2), 2) +
                            4 * std::pow(std::log10(get(p, "label-smoothing")) - std::log10(0.03), 2));
                 }});
  return out;
}

// Held out: lmsweep's TPE defaults (tpe.h) were chosen on the three above, not on these.
std::vector<Function> held_out_functions() {
  std::vector<Function> out;
  out.push_back({"hartmann3", SearchSpace(unit_cube(3)), [](const Point& p) {
                   static const double A[4][3] = {{3, 10, 30}, {0.1, 10, 35}, {3, 10, 30}, {0.1, 10, 35}};
                   static const double P[4][3] = {{3689, 1170, 2673}, {4699, 4387, 7470}, {1091, 8732, 5547},
                                                  {381, 5743, 8828}};
                   return hartmann(p, A, P);
                 }});
  out.push_back({"rosen4log", SearchSpace(unit_cube(4, -2, 2)), [](const Point& p) {
                   double v = 0;
                   for (int i = 0; i < 3; ++i) {
                     const double a = get(p, "x" + std::to_string(i)), b = get(p, "x" + std::to_string(i + 1));
                     v += 100 * std::pow(b - a * a, 2) + std::pow(1 - a, 2);
                   }
                   return -std::log1p(v);
                 }});
  out.push_back({"mixed6",
                 SearchSpace({choice("opt", {0, 1, 2}), choice("width", {64, 128, 256, 512, 1024}),
                              real("lr", 1e-5, 1e-1, true), real("wd", 1e-6, 1e-2, true), real("drop", 0, 0.5),
                              real("warm", 0, 10)}),
                 [](const Point& p) {
                   const auto o = find_value(p, "opt")->as_int();
                   const double w = std::log2(static_cast<double>(find_value(p, "width")->as_int()));
                   const double lr = std::log10(get(p, "lr")) + (o == 1 ? 3.5 : 2.5);
                   return -(0.5 * (o == 2) + 0.3 * std::pow(w - 8.3, 2) + lr * lr +
                            0.5 * std::pow(std::log10(get(p, "wd")) + 4, 2) + 4 * std::pow(get(p, "drop") - 0.1, 2) +
                            0.02 * std::pow(get(p, "warm") - 3, 2));
                 }});
  return out;
}

std::vector<Function> functions(bool all) {
  auto out = benchmark_functions();
  if (all)
    for (auto& f : held_out_functions()) out.push_back(std::move(f));
  return out;
}

// A row of the table: a method, and for TPE whose defaults.
struct Sampler {
  std::string name;
  SamplingMethod method;
  TpeDefaults defaults = TpeDefaults::Lmsweep;
};

// Best-so-far after each evaluation of one sequential search, the sampler called here.
std::vector<double> run_direct(const Function& fn, const Sampler& sampler, uint64_t seed, int evals) {
  const SamplingMethod method = sampler.method;
  SweepConfig c;
  c.name = "bench";
  c.method = method;
  c.seed = seed;
  c.trials = evals;
  c.tpe_defaults = sampler.defaults;
  const TpeOptions options = tpe_options(c);
  const PointSampler design(fn.space, c);
  std::vector<TpeObservation> history;
  std::vector<double> curve;
  double best = -INFINITY;
  for (int k = 0; k < evals; ++k) {
    const Point p = method == SamplingMethod::Tpe
                        ? suggest_tpe(fn.space, history, options, design.seed(k), design.point(k))
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
std::vector<double> run_sweep(const Function& fn, const Sampler& sampler, uint64_t seed, int evals,
                              const std::string& self, const std::filesystem::path& dir) {
  const std::string study = fmt::format("{}-{}-{}", fn.name, sampler.name, seed);
  std::string command = self + " --evaluate " + fn.name;
  for (const auto& d : fn.space.dimensions()) command += fmt::format(" {0}={{{0}}}", d.name);
  const std::string defaults =
      sampler.defaults == TpeDefaults::Optuna ? "tpe_defaults = optuna\n" : "";
  std::ofstream(dir / "sweep.ini") << fmt::format(
      "[sweep]\nname = {}\nmethod = {}\ntrials = {}\nseed = {}\ntrial = command\nobjective = value\n"
      "command = {}\n{}[space]\n{}[train]\nepochs = 1\n", study, to_string(sampler.method), evals, seed, command,
      defaults, space_lines(fn.space));
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
  for (const auto& fn : functions(true)) {
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

double median_at(const Runs& runs, int evals) {
  std::vector<double> v;
  for (const auto& r : runs) v.push_back(r.at(static_cast<size_t>(evals - 1)));
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

double mean_at(const Runs& runs, int evals) {
  double s = 0;
  for (const auto& r : runs) s += r.at(static_cast<size_t>(evals - 1));
  return s / static_cast<double>(runs.size());
}

// The median of a resample (with replacement, seeded) of the values after `evals`.
double resampled_median(const Runs& runs, int evals, uint64_t& state) {
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
void print_difference(const std::string& function, const std::string& sampler, const Runs& ours,
                      const Runs& theirs, int evals) {
  uint64_t state = 12345;
  std::vector<double> d;
  for (int b = 0; b < 2000; ++b) d.push_back(resampled_median(ours, evals, state) - resampled_median(theirs, evals, state));
  std::sort(d.begin(), d.end());
  const double diff = median_at(ours, evals) - median_at(theirs, evals);
  std::cout << fmt::format("{:<10} {} - optuna-tpe, median after {}: {:+.4f} (95 % bootstrap interval {:+.4f} "
                           ".. {:+.4f})\n", function, sampler, evals, diff, d[50], d[1949]);
  std::cout << nlohmann::json{{"bench", "sampler_difference"}, {"function", function}, {"sampler", sampler},
                              {"median_difference", diff}, {"interval_95", {d[50], d[1949]}}}.dump() << "\n";
}

struct Args {
  int evals = 60, seeds = 20, first_seed = 1;
  bool all_functions = false, direct = false;
  std::string python = "python3";
};

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    const bool has_value = i + 1 < argc;
    if (s == "--direct") a.direct = true;
    else if (s == "--evals" && has_value) a.evals = std::stoi(argv[++i]);
    else if (s == "--seeds" && has_value) a.seeds = std::stoi(argv[++i]);
    else if (s == "--first-seed" && has_value) a.first_seed = std::stoi(argv[++i]);
    else if (s == "--functions" && has_value) a.all_functions = std::string(argv[++i]) == "all";
    else if (s == "--python" && has_value) a.python = argv[++i];
    else throw std::runtime_error("bench_sampler: unknown argument '" + s + "'");
  }
  return a;
}

// Optuna's runs, {function: {sampler: runs}}; empty when optuna is not importable.
std::map<std::string, std::map<std::string, Runs>> optuna_runs(const Args& a) {
  std::map<std::string, std::map<std::string, Runs>> out;
  std::string names;
  for (const auto& fn : functions(a.all_functions)) names += " " + fn.name;
  const std::string cmd = fmt::format("{} -c 'import optuna' 2>/dev/null && {} {}/sampler_functions.py {} {} {}{}",
                                      a.python, a.python, LMSWEEP_BENCH_SOURCE_DIR, a.evals, a.seeds, a.first_seed,
                                      names);
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
    out[j["function"]][j["sampler"]] = j["runs"].get<Runs>();
    at = end == std::string::npos ? text.size() : end + 1;
  }
  return out;
}

void print_rows(const std::string& function, const std::map<std::string, Runs>& rows, const std::vector<int>& at,
                const Args& a) {
  for (const auto& [name, runs] : rows) {
    nlohmann::json j = {{"bench", "sampler"}, {"function", function}, {"sampler", name}, {"seeds", a.seeds},
                        {"first_seed", a.first_seed}};
    std::string line = fmt::format("{:<10} {:<18}", function, name);
    for (int n : at) {
      const double m = median_at(runs, n);
      j["median_best_" + std::to_string(n)] = m;
      line += fmt::format("  {:>3}: {:>9.4f}", n, m);
    }
    // Medians of bimodal outcomes (a choice dimension stuck on the wrong value) move a lot
    // with the seeds: the mean after the whole budget too.
    j["mean_best_" + std::to_string(a.evals)] = mean_at(runs, a.evals);
    line += fmt::format("   mean {:>3}: {:>9.4f}", a.evals, mean_at(runs, a.evals));
    std::cout << line << "\n" << j.dump() << "\n";
  }
}

// With 40 seeds or more: in how many consecutive 20-seed windows (seeds first .. first+19, ...)
// a sampler's median after the budget is at least Optuna's. The 20-seed comparison is
// one such window; this says how much it depends on which 20.
void print_windows(const std::string& function, const std::string& sampler, const Runs& ours, const Runs& theirs,
                   int evals) {
  const size_t windows = std::min(ours.size(), theirs.size()) / 20;
  if (windows < 2) return;
  size_t wins = 0;
  for (size_t w = 0; w < windows; ++w) {
    const Runs a(ours.begin() + 20 * w, ours.begin() + 20 * (w + 1)), b(theirs.begin() + 20 * w, theirs.begin() + 20 * (w + 1));
    wins += median_at(a, evals) >= median_at(b, evals);
  }
  std::cout << fmt::format("{:<10} {} >= optuna-tpe in {} of {} 20-seed windows\n", function, sampler, wins, windows);
}

int bench(const Args& a) {
  const std::string self = std::filesystem::canonical("/proc/self/exe").string();
  const auto dir = std::filesystem::temp_directory_path() / fmt::format("lmsweep-bench-sampler-{}", ::getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  int identical = 0, compared = 0;
  auto search = [&](const Function& fn, const Sampler& sampler, uint64_t seed) {
    auto here = run_direct(fn, sampler, seed, a.evals);
    if (a.direct) return here;
    auto swept = run_sweep(fn, sampler, seed, a.evals, self, dir);
    ++compared;
    identical += swept == here;
    return swept;
  };
  std::cout << (a.direct ? "sampler called directly (--direct)\n"
                         : "each search a sweep: lmsweep sweep, trial = command (this program --evaluate)\n");
  const std::vector<int> at = {std::min(15, a.evals), std::min(30, a.evals), a.evals};
  const auto optuna = optuna_runs(a);
  if (optuna.empty()) std::cout << "(optuna is not importable by " << a.python << ": its rows are left out)\n";
  std::cout << fmt::format("median best of seeds {} .. {} after {}, {}, {} evaluations (maximised)\n", a.first_seed,
                           a.first_seed + a.seeds - 1, at[0], at[1], at[2]);
  const std::vector<Sampler> samplers = {{"random", SamplingMethod::Random},
                                         {"sobol", SamplingMethod::Sobol},
                                         {"lmsweep-tpe", SamplingMethod::Tpe},
                                         {"lmsweep-tpe-optuna", SamplingMethod::Tpe, TpeDefaults::Optuna}};
  for (const auto& fn : functions(a.all_functions)) {
    std::map<std::string, Runs> rows;
    for (const auto& sampler : samplers)
      for (int s = a.first_seed; s < a.first_seed + a.seeds; ++s)
        rows[sampler.name].push_back(search(fn, sampler, static_cast<uint64_t>(s)));
    if (optuna.count(fn.name))
      for (const auto& [name, runs] : optuna.at(fn.name)) rows[name] = runs;
    print_rows(fn.name, rows, at, a);
    if (!rows.count("optuna-tpe")) continue;
    for (const char* ours : {"lmsweep-tpe", "lmsweep-tpe-optuna"}) {
      print_difference(fn.name, ours, rows.at(ours), rows.at("optuna-tpe"), a.evals);
      print_windows(fn.name, ours, rows.at(ours), rows.at("optuna-tpe"), a.evals);
    }
  }
  if (!a.direct)
    std::cout << fmt::format("sweeps whose curve equals the sampler called directly: {} of {}\n", identical, compared);
  std::filesystem::remove_all(dir);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 3 && std::string(argv[1]) == "--evaluate") return evaluate(argc, argv);
  try {
    return bench(parse_args(argc, argv));
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 1;
  }
}
