#include "train/resume_state.h"

#include <filesystem>

#include <nlohmann/json.hpp>
#include <torch/serialize.h>
#include <torch/torch.h>

#include "common/error.h"
#include "common/files.h"
#include "model/checkpoint.h"

namespace lmsweep {
namespace {

std::string options_signature(const TrainOptions& o) {
  nlohmann::json j = method_options(o);
  j["weights"] = o.weights;
  j["arch"] = o.arch;
  j["train"] = o.train;
  return j.dump();
}

}  // namespace

std::string state_path(const TrainOptions& o) {
  return (std::filesystem::path(o.checkpoint_dir) / "state.pt").string();
}

void save_state(TrainRun& run, const ResumeState& s) {
  torch::serialize::OutputArchive archive, model_archive, optim_archive;
  run.model->save(model_archive);
  run.optimizer->save(optim_archive);
  archive.write("model", model_archive);
  archive.write("optimizer", optim_archive);
  nlohmann::json j = {{"next_epoch", s.next_epoch}, {"next_step", s.next_step}, {"loss_sum", s.loss_sum},
                      {"count", s.count}, {"epoch_seconds", s.epoch_seconds}, {"best_map", s.best_map},
                      {"best_tail", s.best_tail}, {"best_map_epoch", s.best_map_epoch},
                      {"best_tail_epoch", s.best_tail_epoch}, {"options", options_signature(run.options)}};
  archive.write("state", c10::IValue(j.dump()));
  std::string bytes;
  archive.save_to([&](const void* data, size_t n) {
    bytes.append(static_cast<const char*>(data), n);
    return n;
  });
  write_file_durably(state_path(run.options), bytes.data(), bytes.size(), "resume state");  // never half-written
}

bool load_state(TrainRun& run, ResumeState& s) {
  const std::string path = state_path(run.options);
  if (!std::filesystem::exists(path)) return false;
  torch::serialize::InputArchive archive, model_archive, optim_archive;
  try {
    archive.load_from(path, run.device);
  } catch (const c10::Error&) {
    throw_error("{}: unreadable resume state; delete it to start over", path);
  }
  c10::IValue state;
  archive.read("state", state);
  const auto j = nlohmann::json::parse(state.toStringRef());
  LMSWEEP_CHECK(j.at("options").get<std::string>() == options_signature(run.options),
                "--resume: {} was written by a run with other options ({}); use another --checkpoint-dir or the "
                "same options", path, j.at("options").get<std::string>());
  archive.read("model", model_archive);
  archive.read("optimizer", optim_archive);
  run.model->load(model_archive);
  run.optimizer->load(optim_archive);
  run.embedding.read_back();
  s.next_epoch = j.at("next_epoch");
  s.next_step = j.at("next_step");
  s.loss_sum = j.at("loss_sum");
  s.count = j.at("count");
  s.epoch_seconds = j.at("epoch_seconds");
  s.best_map = j.at("best_map");
  s.best_tail = j.at("best_tail");
  s.best_map_epoch = j.at("best_map_epoch");
  s.best_tail_epoch = j.at("best_tail_epoch");
  return true;
}

void save_weights(TrainRun& run, const std::string& name) {
  save_clip_weights(run.model, (std::filesystem::path(run.options.checkpoint_dir) / name).string());
}

}  // namespace lmsweep
