#pragma once
// Command-line and INI parsing shared by the subcommands (torch-free). Training options come
// from the command line or from an INI file's [train] section under the flag's own name; the
// command line wins.
#include <map>
#include <string>
#include <vector>

#include <boost/program_options/options_description.hpp>
#include <boost/program_options/variables_map.hpp>

#include "sweep/config.h"
#include "sweep/search_space.h"
#include "train/options.h"

namespace lmsweep::cli {

// Adds every training option of train/options.h as --name (string-valued; switches implicit).
void add_train_options(boost::program_options::options_description& desc);

// Parses argv against desc (positional arguments refused); errors become lmsweep::Error with
// the command's name and a pointer to --help.
boost::program_options::variables_map parse(const std::string& command, int argc, const char* const argv[],
                                            const boost::program_options::options_description& desc);

// Training options from the command line, then the config file's [train] section for the
// options the command line did not set. Unknown [train] keys fail naming file:line.
TrainOptions train_options_from(const boost::program_options::variables_map& vm, const std::string& config_path);

// --synthetic DIR: the built-in dataset in DIR (written there with seed 0 if missing: every
// run and trial sees the same data) fills data-root / train / test / labels.
void resolve_synthetic(TrainOptions& options);

// True when --help / -h is among argv[1..]: the command prints its help instead of parsing
// (required options would otherwise fail first).
bool wants_help(int argc, const char* const argv[]);

// A sweep INI read and checked as `lmsweep sweep` and `lmsweep submit` both need it, before
// anything runs or is written: [sweep] and [space] present and valid, no swept option also
// fixed ([train] or the command line), every value a dimension can take valid for a trial.
struct SweepIni {
  sweep::SweepConfig config;
  sweep::SearchSpace space;
  TrainOptions base;  // [train] and the command line
};
SweepIni read_sweep_ini(const std::string& path, const boost::program_options::variables_map& vm);

// Every value a dimension of `space` can give (a choice's values, a range's ends) set on the
// base options and validated, so that `batch-size = choice(8, abc)` fails before the first
// trial, naming the dimension and the value. `label` names the section ("sweep.ini [space]").
void validate_space_values(const TrainOptions& base, const sweep::SearchSpace& space, const std::string& label);

// Prints "lmsweep COMMAND - summary\n\nusage...\n" + desc.
std::string help_text(const std::string& usage, const std::string& summary,
                      const boost::program_options::options_description& desc);

}  // namespace lmsweep::cli
