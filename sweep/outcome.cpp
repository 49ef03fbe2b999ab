#include "sweep/outcome.h"

#include <utility>

namespace lmsweep::sweep {
namespace {

int severity(const std::string& status) {
  if (status == "failed") return 3;
  if (status == "interrupted") return 2;
  if (status == "pruned") return 1;
  return 0;
}

}  // namespace

nlohmann::json RankOutcome::to_json() const {
  return {{"status", status}, {"error", error}, {"caused_here", caused_here}, {"at", at}};
}

RankOutcome RankOutcome::from_json(const nlohmann::json& j) {
  RankOutcome o;
  o.status = j.value("status", std::string("failed"));
  o.error = j.value("error", std::string());
  o.caused_here = j.value("caused_here", false);
  o.at = j.value("at", 0.0);
  return o;
}

RankOutcome combine_outcomes(const std::vector<RankOutcome>& outcomes) {
  RankOutcome out;
  for (const auto& o : outcomes)
    if (severity(o.status) > severity(out.status)) out.status = o.status;
  if (out.status != "failed") return out;
  // The failure caused first names the trial's error; failures seen on peers come after.
  const RankOutcome* first = nullptr;
  for (const auto& o : outcomes) {
    if (o.status != "failed") continue;
    const auto key = [](const RankOutcome* x) { return std::make_pair(!x->caused_here, x->at); };
    if (!first || key(&o) < key(first)) first = &o;
  }
  out = *first;
  return out;
}

}  // namespace lmsweep::sweep
