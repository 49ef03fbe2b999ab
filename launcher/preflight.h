#pragma once
// What would fail every trial of a sweep, found before the first one starts: a missing split
// file or image, --device cuda without a GPU, a --checkpoint-dir that cannot be written, an
// option no trial can run with. Each throws lmsweep::Error naming the file / option / value.
#include "sweep/coordinator.h"
#include "sweep/point_sampler.h"
#include "train/options.h"

namespace lmsweep::cli {

// fake: --fake-epoch-seconds (no data, no device) checks the options only.
void check_before_first_trial(const TrainOptions& base, const sweep::SweepSetup& setup,
                              const sweep::PointSampler& sampler, bool fake);

// The same for one run's data and device (also `train`).
void check_data_files(const TrainOptions& options);
void check_device(const std::string& device);
void check_writable_folder(const std::string& folder, const std::string& option);

}  // namespace lmsweep::cli
