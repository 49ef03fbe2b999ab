#include "export/tensorboard/summaries.h"

#include "common/error.h"
#include "tensorboard/tbproto/event.pb.h"
#include "tensorboard/tbproto/hparams.pb.h"
#include "tensorboard/tbproto/summary.pb.h"

namespace lmsweep::tensorboard {
namespace {

std::string serialize(const tb::Event& event) {
  std::string out;
  LMSWEEP_CHECK(event.SerializeToString(&out), "TensorBoard: cannot serialize an event (step {})", event.step());
  return out;
}

// One summary value of the HParams plugin, as summary_v2.py's _summary_pb makes it.
std::string hparams_event(double wall_time, const char* tag, const tb::hparams::HParamsPluginData& data) {
  tb::Event event;
  event.set_wall_time(wall_time);
  event.set_step(0);
  auto* value = event.mutable_summary()->add_value();
  value->set_tag(tag);
  auto* metadata = value->mutable_metadata();
  metadata->mutable_plugin_data()->set_plugin_name(kHParamsPlugin);
  metadata->mutable_plugin_data()->set_content(data.SerializeAsString());
  metadata->set_data_class(tb::DATA_CLASS_TENSOR);  // what dataclass_compat.py gives hparams values
  // metadata.NULL_TENSOR: an empty float vector, the shortest valid tensor.
  auto* tensor = value->mutable_tensor();
  tensor->set_dtype(tb::DT_FLOAT);
  tensor->mutable_tensor_shape()->add_dim()->set_size(0);
  return serialize(event);
}

void to_value(const nlohmann::json& j, google::protobuf::Value* v) {
  if (j.is_boolean()) v->set_bool_value(j.get<bool>());
  else if (j.is_number()) v->set_number_value(j.get<double>());
  else if (j.is_string()) v->set_string_value(j.get<std::string>());
  else v->set_string_value(j.dump());
}

}  // namespace

std::string file_version_event(double wall_time) {
  tb::Event event;
  event.set_wall_time(wall_time);
  event.set_file_version(kFileVersion);
  return serialize(event);
}

std::string scalars_event(double wall_time, std::int64_t step,
                          const std::vector<std::pair<std::string, double>>& values) {
  tb::Event event;
  event.set_wall_time(wall_time);
  event.set_step(step);
  auto* summary = event.mutable_summary();
  for (const auto& [tag, v] : values) {
    auto* value = summary->add_value();
    value->set_tag(tag);
    value->set_simple_value(static_cast<float>(v));
  }
  return serialize(event);
}

std::string session_start_log_event(double wall_time, std::int64_t step) {
  tb::Event event;
  event.set_wall_time(wall_time);
  event.set_step(step);
  event.mutable_session_log()->set_status(tb::SessionLog::START);
  return serialize(event);
}

std::string experiment_event(double wall_time, const ExperimentSpec& spec) {
  tb::hparams::HParamsPluginData data;
  auto* e = data.mutable_experiment();
  e->set_name(spec.name);
  e->set_description(spec.description);
  e->set_time_created_secs(spec.time_created_secs);
  for (const auto& h : spec.hparams) {
    auto* info = e->add_hparam_infos();
    info->set_name(h.name);
    info->set_description(h.description);
    info->set_type(static_cast<tb::hparams::DataType>(h.type));
    if (h.interval) {
      info->mutable_domain_interval()->set_min_value(h.interval->first);
      info->mutable_domain_interval()->set_max_value(h.interval->second);
    } else if (h.discrete.is_array()) {
      auto* list = info->mutable_domain_discrete();
      for (const auto& v : h.discrete) to_value(v, list->add_values());
    }
  }
  for (const auto& m : spec.metrics) {
    auto* info = e->add_metric_infos();
    info->mutable_name()->set_tag(m.tag);  // group "": the scalars are in the session's own run
    info->set_description(m.description);
  }
  return hparams_event(wall_time, kExperimentTag, data);
}

std::string session_start_event(double wall_time, const nlohmann::json& hparams, const std::string& group_name,
                                double start_time_secs) {
  tb::hparams::HParamsPluginData data;
  auto* s = data.mutable_session_start_info();
  s->set_group_name(group_name);
  s->set_start_time_secs(start_time_secs);
  for (const auto& [name, v] : hparams.items()) to_value(v, &(*s->mutable_hparams())[name]);
  return hparams_event(wall_time, kSessionStartTag, data);
}

std::string session_end_event(double wall_time, SessionStatus status, double end_time_secs) {
  tb::hparams::HParamsPluginData data;
  data.mutable_session_end_info()->set_status(static_cast<tb::hparams::Status>(status));
  data.mutable_session_end_info()->set_end_time_secs(end_time_secs);
  return hparams_event(wall_time, kSessionEndTag, data);
}

}  // namespace lmsweep::tensorboard
