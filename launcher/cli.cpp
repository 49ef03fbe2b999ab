#include "launcher/cli.h"

#include <filesystem>
#include <set>
#include <sstream>

#include <boost/program_options/parsers.hpp>
#include <boost/program_options/value_semantic.hpp>

#include "common/error.h"
#include "data/synthetic.h"
#include "sweep/command_trial.h"
#include "sweep/config.h"

namespace po = boost::program_options;

namespace lmsweep::cli {

void add_train_options(po::options_description& desc) {
  for (const auto& info : train_option_table()) {
    if (info.is_switch)
      desc.add_options()(info.name.c_str(), po::value<std::string>()->implicit_value("1")->zero_tokens(),
                         info.help.c_str());
    else
      desc.add_options()(info.name.c_str(), po::value<std::string>(), info.help.c_str());
  }
}

po::variables_map parse(const std::string& command, int argc, const char* const argv[],
                        const po::options_description& desc) {
  po::variables_map vm;
  try {
    po::store(po::command_line_parser(argc, argv).options(desc).positional({}).run(), vm);
    po::notify(vm);
  } catch (const po::error& e) {
    throw_error("lmsweep {}: {} (see lmsweep {} --help)", command, e.what(), command);
  }
  return vm;
}

TrainOptions train_options_from(const po::variables_map& vm, const std::string& config_path) {
  TrainOptions options;
  if (!config_path.empty()) {
    const auto ini = sweep::parse_ini_file(config_path);
    for (const auto& kv : ini.section("train")) {
      LMSWEEP_CHECK(is_train_option(kv.key), "{}: unknown option '{}' in [train] (see lmsweep train --help)",
                    kv.origin.empty() ? config_path : kv.origin, kv.key);
      if (vm.count(kv.key)) continue;  // the command line wins
      try {
        set_train_option(options, kv.key, kv.value);
      } catch (const Error& e) {
        throw_error("{}: {}", kv.origin.empty() ? config_path : kv.origin, e.what());
      }
    }
  }
  for (const auto& info : train_option_table())
    if (vm.count(info.name)) set_train_option(options, info.name, vm[info.name].as<std::string>());
  return options;
}

void resolve_synthetic(TrainOptions& options) {
  if (options.synthetic.empty()) return;
  const std::string dir = options.synthetic;
  SyntheticOptions so;
  so.out_dir = dir;
  const auto labels = std::filesystem::path(dir) / "labels.txt";
  SyntheticDataset ds;
  if (std::filesystem::exists(labels)) {
    ds.labels_file = labels.string();
    ds.train_split = (std::filesystem::path(dir) / "train.txt").string();
    ds.test_split = (std::filesystem::path(dir) / "test.txt").string();
    ds.data_root = dir;
  } else {
    ds = write_synthetic_dataset(so);
  }
  options.data_root = ds.data_root;
  options.train = ds.train_split;
  options.test = ds.test_split;
  options.labels = ds.labels_file;
}

bool wants_help(int argc, const char* const argv[]) {
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") return true;
  return false;
}

std::string help_text(const std::string& usage, const std::string& summary, const po::options_description& desc) {
  std::ostringstream s;
  s << summary << "\n\nusage: " << usage << "\n\n" << desc;
  return s.str();
}

void validate_space_values(const TrainOptions& base_in, const sweep::SearchSpace& space, const std::string& label) {
  TrainOptions base = base_in;
  if (!base.synthetic.empty() && base.train.empty()) {  // the files resolve_synthetic would name
    const std::filesystem::path dir(base.synthetic);
    base.data_root = dir.string();
    base.train = (dir / "train.txt").string();
    base.test = (dir / "test.txt").string();
    base.labels = (dir / "labels.txt").string();
  }
  for (const auto& d : space.dimensions()) {
    std::vector<sweep::ParamValue> values = d.values;
    if (d.dist == sweep::Distribution::Uniform || d.dist == sweep::Distribution::LogUniform) values = {d.low, d.high};
    if (d.dist == sweep::Distribution::IntUniform)
      values = {static_cast<int64_t>(d.low), static_cast<int64_t>(d.high)};
    for (const auto& v : values) {
      const std::string text = sweep::to_flag_value(v);
      try {
        TrainOptions o = base;
        set_train_option(o, d.name, text);
        o.validate();
      } catch (const Error& e) {
        throw_error("{}: {} can take the value {}, which no trial can run with: {}", label, d.name, text, e.what());
      }
    }
  }
}

namespace {
std::set<std::string> sweepable_options() {
  std::set<std::string> names;
  for (const auto& info : train_option_table())
    if (info.sweepable) names.insert(info.name);
  return names;
}
}  // namespace

SweepIni read_sweep_ini(const std::string& config, const boost::program_options::variables_map& vm) {
  const auto ini = sweep::parse_ini_file(config);
  for (const auto& [name, entries] : ini.sections) {
    if (name == "sweep" || name == "space" || name == "train" || (name.empty() && entries.empty())) continue;
    const std::string where = entries.empty() || entries[0].origin.empty() ? config : entries[0].origin;
    throw_error("{}: {} is not a section of a sweep config: use [sweep], [space] and [train]", where,
                name.empty() ? "a key before any section" : "[" + name + "]");
  }
  LMSWEEP_CHECK(ini.has_section("sweep"), "{}: no [sweep] section (name, method, trials, ...)", config);
  LMSWEEP_CHECK(ini.has_section("space"), "{}: no [space] section: the sweep has nothing to search", config);
  SweepIni out;
  out.config = sweep::parse_sweep_config(ini.section("sweep"), config + " [sweep]");
  const bool command = out.config.trial == sweep::TrialKind::Command;
  // A command trial's dimensions are whatever its program takes.
  out.space = sweep::SearchSpace::parse(ini.section("space"), command ? std::set<std::string>{} : sweepable_options(),
                                        config + " [space]");
  out.config.validate(config + " [sweep]");
  if (command) sweep::CommandTemplate::parse(out.config.command).check_names(out.space, config + " [sweep]");
  out.base = train_options_from(vm, config);
  // A swept option given a fixed value too is a contradiction: say which.
  const auto train_section = ini.section("train");
  for (const auto& dim : out.space.dimensions()) {
    LMSWEEP_CHECK(!vm.count(dim.name), "--{} is both a [space] dimension of {} and set on the command line; "
                  "remove one", dim.name, config);
    for (const auto& kv : train_section)
      LMSWEEP_CHECK(kv.key != dim.name, "{}: '{}' is both a [space] dimension and set in [train]; remove one",
                    kv.origin.empty() ? config : kv.origin, dim.name);
  }
  if (!command) validate_space_values(out.base, out.space, config + " [space]");
  return out;
}

}  // namespace lmsweep::cli
