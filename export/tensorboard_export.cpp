#include "export/tensorboard_export.h"

#include <algorithm>
#include <filesystem>
#include <set>

#include "common/error.h"
#include "common/staged_output.h"

namespace lmsweep {
namespace fs = std::filesystem;
namespace {

void add_unique(std::vector<std::string>& out, const std::string& tag) {
  if (std::find(out.begin(), out.end(), tag) == out.end()) out.push_back(tag);
}

bool is_event_file(const fs::directory_entry& e) {
  return e.is_regular_file() && e.path().filename().string().rfind("events.out.tfevents.", 0) == 0;
}

// The first entry of `dir` that an export does not make (event files, trial-* folders of
// event files), "" when there is none: what replacing the folder whole would delete.
std::string foreign_entry(const fs::path& dir) {
  for (const auto& e : fs::directory_iterator(dir)) {
    if (is_event_file(e)) continue;
    if (!e.is_directory() || e.path().filename().string().rfind("trial-", 0) != 0) return e.path().string();
    for (const auto& f : fs::directory_iterator(e.path()))
      if (!is_event_file(f)) return f.path().string();
  }
  return "";
}

void write_study(const report::StudyData& data, const std::string& dir, const tensorboard::TensorBoardOptions& o) {
  tensorboard::TensorBoardStudyWriter tb(dir, o);
  tb.begin(data.study, data.space, study_metric_tags(data));
  for (const auto& t : data.trials) {
    if (t.info.status == db::TrialStatus::Pending && t.epochs.empty()) continue;  // never ran: nothing to show
    tb.trial_started(t.info, t.params.dump());
    for (const auto& e : t.epochs) tb.epoch(t.info, e);
    tb.trial_ended(t.info, t.info.status);
  }
}

}  // namespace

std::vector<std::string> study_metric_tags(const report::StudyData& data) {
  std::vector<std::string> tags;
  for (const auto& o : data.objectives) add_unique(tags, o);
  std::set<std::string> seen;
  for (const auto& t : data.trials)
    for (const auto& e : t.epochs)
      for (const auto& [tag, v] : tensorboard::epoch_scalars(e)) seen.insert(tag);
  for (const auto& tag : tensorboard::lmclip_metric_tags())
    if (seen.count(tag)) add_unique(tags, tag);
  for (const auto& tag : seen)
    if (tag != "lr" && tag != "seconds") add_unique(tags, tag);
  return tags;
}

void export_tensorboard(const report::StudyData& data, const std::string& out_dir,
                        const tensorboard::TensorBoardOptions& options) {
  fs::path target = fs::path(out_dir).lexically_normal();
  if (target.filename().empty()) target = target.parent_path();  // "runs/voc/"
  LMSWEEP_CHECK(!target.empty(), "{}: no folder given: name one, e.g. runs/{}", options.what, data.study.name);
  std::error_code ec;
  if (fs::is_directory(target, ec)) {
    const std::string foreign = foreign_entry(target);
    LMSWEEP_CHECK(foreign.empty(),
                  "{} {}: holds {}, which is not part of a TensorBoard export, and the export replaces the folder "
                  "whole: pass a new folder, or move it away first", options.what, target.string(), foreign);
  }
  StagedOutput out(target.string(), StagedOutput::Kind::Directory, options.what);
  write_study(data, out.path(), options);
  out.commit();
}

void export_tensorboard(const report::StudyData& data, const std::string& out_dir) {
  tensorboard::TensorBoardOptions options;
  options.what = "--out";
  export_tensorboard(data, out_dir, options);
}

}  // namespace lmsweep
