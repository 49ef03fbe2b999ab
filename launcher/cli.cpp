#include "launcher/cli.h"

#include <filesystem>
#include <sstream>

#include <boost/program_options/parsers.hpp>
#include <boost/program_options/value_semantic.hpp>

#include "common/error.h"
#include "data/synthetic.h"
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

void validate_space_values(const TrainOptions& base, const sweep::SearchSpace& space, const std::string& label) {
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

}  // namespace lmsweep::cli
