#pragma once
// `lmsweep export --format tensorboard`: a study from the database as TensorBoard event files
// (see export/tensorboard/study_writer.h for the layout). Torch-free.
//
//   auto data = lmsweep::report::load_study(store, std::nullopt);
//   lmsweep::export_tensorboard(data, "runs/voc");  // then: tensorboard --logdir runs/voc
#include <string>
#include <vector>

#include "export/tensorboard/study_writer.h"
#include "report/study_data.h"

namespace lmsweep {

// The HParams metrics of a study: its objectives, then LM-CLIP's metric tags that some epoch
// recorded, then every other metric some epoch recorded (sorted). lr and seconds are scalars
// only, not metrics.
std::vector<std::string> study_metric_tags(const report::StudyData& data);

// Writes the study's experiment, and for every trial that ever ran its parameters, epochs and
// end status, into the folder `out_dir`, replacing a previous export there whole (through
// <out_dir>.partial-<pid>, renamed at the end: a failure leaves nothing half-written). Throws
// lmsweep::Error, one line naming out_dir and what to do, when it cannot be written or when it
// holds anything but an export's files (event files, trial-* folders): nothing of the user's
// is deleted. options.what names the option in messages; "--out" without options.
void export_tensorboard(const report::StudyData& data, const std::string& out_dir,
                        const tensorboard::TensorBoardOptions& options);
void export_tensorboard(const report::StudyData& data, const std::string& out_dir);

}  // namespace lmsweep
