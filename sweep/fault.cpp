#include "sweep/fault.h"

#include <cstdlib>
#include <sstream>

#include "common/error.h"

namespace lmsweep::sweep {
namespace {

int64_t parse_count(const std::string& part, const std::string& value, int64_t min) {
  size_t used = 0;
  int64_t v = 0;
  try {
    v = std::stoll(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  LMSWEEP_CHECK(used == value.size() && !value.empty() && v >= min,
                "LMSWEEP_FAULT: '{}' needs an integer >= {}", part, min);
  return v;
}

Fault parse_one(const std::string& text) {
  std::stringstream in(text);
  std::string part;
  std::getline(in, part, ':');
  Fault f;
  if (part == "throw") f.kind = FaultKind::Throw;
  else if (part == "hang") f.kind = FaultKind::Hang;
  else if (part == "stuck") f.kind = FaultKind::Stuck;
  else if (part == "abort") f.kind = FaultKind::Abort;
  else if (part == "oom") f.kind = FaultKind::Oom;
  else throw_error("LMSWEEP_FAULT: unknown fault '{}' in '{}': use throw, hang, stuck, abort or oom", part, text);
  while (std::getline(in, part, ':')) {
    const auto eq = part.find('=');
    const std::string key = part.substr(0, eq), value = eq == std::string::npos ? "" : part.substr(eq + 1);
    if (key == "trial") f.trial = parse_count(part, value, 0);
    else if (key == "rank") f.rank = static_cast<int>(parse_count(part, value, 0));
    else if (key == "step") f.step = parse_count(part, value, 1);
    else if (key == "attempt") f.attempt = static_cast<int>(parse_count(part, value, 1));
    else throw_error("LMSWEEP_FAULT: unknown '{}' in '{}': use trial=N, rank=R, step=S, attempt=A", part, text);
  }
  return f;
}

}  // namespace

std::string to_string(FaultKind kind) {
  switch (kind) {
    case FaultKind::Throw: return "throw";
    case FaultKind::Hang: return "hang";
    case FaultKind::Stuck: return "stuck";
    case FaultKind::Abort: return "abort";
    case FaultKind::Oom: return "oom";
  }
  return "throw";
}

FaultPlan FaultPlan::parse(const std::string& text) {
  FaultPlan plan;
  std::stringstream in(text);
  std::string one;
  while (std::getline(in, one, ','))
    if (!one.empty()) plan.faults_.push_back(parse_one(one));
  return plan;
}

FaultPlan FaultPlan::from_environment() {
  const char* v = std::getenv("LMSWEEP_FAULT");
  return v ? parse(v) : FaultPlan{};
}

std::optional<FaultKind> FaultPlan::at(int64_t trial, int rank, int64_t step, int attempt) const {
  for (const Fault& f : faults_) {
    if (f.trial && *f.trial != trial) continue;
    if (f.rank && *f.rank != rank) continue;
    if (f.attempt && *f.attempt != attempt) continue;
    if (f.step == step) return f.kind;
  }
  return std::nullopt;
}

}  // namespace lmsweep::sweep
