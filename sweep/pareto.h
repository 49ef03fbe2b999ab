#pragma once
// Pareto fronts of several maximised objectives, and the hypervolume they dominate, for
// `lmsweep best --pareto` (the paper's head / tail trade-off). Torch-free.
#include <cstddef>
#include <vector>

namespace lmsweep::sweep {

// Indices of the non-dominated points, in input order. a dominates b when a >= b in every
// objective and a > b in one; equal points are all kept. points: [n][objectives].
std::vector<size_t> pareto_front(const std::vector<std::vector<double>>& points);

// The volume of the union of the boxes [reference, p] over the points (those not above the
// reference in every objective add nothing). Exact, by slicing (HSO, While et al. 2006): for
// the small fronts of a sweep, O(n^d).
double hypervolume(const std::vector<std::vector<double>>& points, const std::vector<double>& reference);

}  // namespace lmsweep::sweep
