#include "sweep/pareto.h"

#include <algorithm>

#include "common/error.h"

namespace lmsweep::sweep {
namespace {

bool dominates(const std::vector<double>& a, const std::vector<double>& b) {
  bool better = false;
  for (size_t k = 0; k < a.size(); ++k) {
    if (a[k] < b[k]) return false;
    better = better || a[k] > b[k];
  }
  return better;
}

// Points strictly above the reference, over the first `d` objectives.
double slice_volume(std::vector<std::vector<double>> points, const std::vector<double>& ref, size_t d) {
  if (points.empty()) return 0;
  if (d == 1) {
    double best = ref[0];
    for (const auto& p : points) best = std::max(best, p[0]);
    return best - ref[0];
  }
  // Highest last objective first; each slab between two consecutive levels is the (d-1)-volume
  // of the points at or above it.
  std::sort(points.begin(), points.end(), [&](const auto& a, const auto& b) { return a[d - 1] > b[d - 1]; });
  double volume = 0;
  std::vector<std::vector<double>> above;
  for (size_t i = 0; i < points.size(); ++i) {
    above.push_back(points[i]);
    const double next = i + 1 < points.size() ? points[i + 1][d - 1] : ref[d - 1];
    const double height = points[i][d - 1] - next;
    if (height > 0) volume += height * slice_volume(above, ref, d - 1);
  }
  return volume;
}

}  // namespace

std::vector<size_t> pareto_front(const std::vector<std::vector<double>>& points) {
  std::vector<size_t> front;
  for (size_t i = 0; i < points.size(); ++i) {
    bool dominated = false;
    for (size_t j = 0; j < points.size() && !dominated; ++j) dominated = j != i && dominates(points[j], points[i]);
    if (!dominated) front.push_back(i);
  }
  return front;
}

double hypervolume(const std::vector<std::vector<double>>& points, const std::vector<double>& reference) {
  std::vector<std::vector<double>> inside;
  for (const auto& p : points) {
    LMSWEEP_CHECK(p.size() == reference.size(), "hypervolume: a point of {} objectives against a reference of {}",
                  p.size(), reference.size());
    bool above = true;
    for (size_t k = 0; k < p.size(); ++k) above = above && p[k] > reference[k];
    if (above) inside.push_back(p);
  }
  return slice_volume(inside, reference, reference.size());
}

}  // namespace lmsweep::sweep
