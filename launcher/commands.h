#pragma once
// One function per subcommand: argv excludes "lmsweep" (argv[0] is the subcommand). Each returns
// the exit status; errors are thrown as lmsweep::Error and printed by main.
#include "common/exit_codes.h"

namespace lmsweep::cli {

int run_eval(int argc, const char* const argv[]);
int run_train(int argc, const char* const argv[]);
int run_synth_data(int argc, const char* const argv[]);
int run_sweep(int argc, const char* const argv[]);
int run_best(int argc, const char* const argv[]);
int run_status(int argc, const char* const argv[]);
int run_submit(int argc, const char* const argv[]);
int run_report(int argc, const char* const argv[]);
int run_export(int argc, const char* const argv[]);
int run_importance(int argc, const char* const argv[]);

}  // namespace lmsweep::cli
