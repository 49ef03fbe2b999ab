#pragma once
// Trial points. Trial k's point and seed are pure functions of (study seed, k, space, method,
// grid_points): no generator state, so they do not depend on the number of ranks, on which
// rank asks, or on the order trials finish (DESIGN.md section 3).
//
//   random  every value from a counter-based hash of (seed, k, dimension name) (splitmix64),
//           not from a sequential stream.
//   sobol   the k-th point (natural order, k = 0, 1, ...) of a Sobol sequence with Joe & Kuo's
//           new-joe-kuo-6.21201 direction numbers (up to 21 non-fixed dimensions), randomised
//           by a linear matrix scramble and a digital shift drawn from the seed (as scipy's
//           default scramble=True). Both keep the net property: the first 2^m points put one
//           point in each of the 2^m equal cells of every dimension.
//   tpe     point(k) is the Sobol design point; the coordinator uses it for the first
//           n_startup_trials trials and then asks suggest_tpe (tpe.h) with the study's history.
//   grid    the cartesian product of each dimension's values: choice lists its values, fixed
//           its value, uniform `grid_points` linear values from low to high, loguniform
//           geometric ones, int linear ones rounded and de-duplicated. Trial k is the k-th
//           combination, the last dimension (by name) varying fastest. The trial count is the
//           grid size unless `trials` is given; a smaller `trials` takes the first points, a
//           larger one is an error (a grid does not wrap).
//
// Values are mapped from u in [0, 1): uniform low + u (high - low); loguniform
// exp(log low + u (log high - log low)); int low + floor(u (high - low + 1)); choice
// values[floor(u n)].
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "sweep/config.h"
#include "sweep/search_space.h"

namespace lmsweep::sweep {

// (flag name, value), sorted by name as the space's dimensions.
using Point = std::vector<std::pair<std::string, ParamValue>>;

nlohmann::json to_json(const Point& point);  // {"batch-size": 16, "gamma-neg": 7.25, ...}
Point point_from_json(const nlohmann::json& j);  // inverse; throws lmsweep::Error
// The value of `name` in `point`; nullptr when absent.
const ParamValue* find_value(const Point& point, const std::string& name);
// Whether `point` has a value of every dimension of `space`, inside its range or choices
// (a point of another study, for warm starts).
bool fits(const SearchSpace& space, const Point& point);

// Counter-based hashing (splitmix64, Steele et al. 2014).
uint64_t splitmix64(uint64_t x);
// Maps 64 random bits to a double in [0, 1) (the top 53 bits).
double to_unit_interval(uint64_t bits);
// The seed of trial k of a study: a hash of (study seed, k), 0 .. 2^63-1.
uint64_t trial_seed(uint64_t study_seed, int64_t k);

// A scrambled Sobol sequence (see above). Point k is computed directly from the bits of k.
class SobolSequence {
 public:
  static constexpr int kMaxDimensions = 21;
  // `scramble_seed` draws the matrix scramble and digital shift; scramble = false gives the
  // plain sequence (point 0 = all zeros). Throws lmsweep::Error for dims outside 1..21.
  SobolSequence(int dims, uint64_t scramble_seed, bool scramble = true);
  int dims() const { return dims_; }
  // Coordinates of point k in [0, 1), one per dimension. k < 2^32.
  std::vector<double> point(uint64_t k) const;

 private:
  int dims_;
  std::vector<std::vector<uint32_t>> directions_;  // [dim][bit], bit 0 = most significant
  std::vector<uint32_t> shift_;                      // [dim]
};

class PointSampler {
 public:
  // Resolves the trial count (see num_trials()) and, for grid, the per-dimension values.
  // Throws lmsweep::Error: an empty space, random/sobol without trials, sobol with more than
  // 21 non-fixed dimensions, grid with trials larger than the grid, a grid over 10^9 points.
  PointSampler(SearchSpace space, const SweepConfig& config);

  const SearchSpace& space() const { return space_; }
  SamplingMethod method() const { return method_; }
  // `trials` of the config, or the grid size when it was not given for grid.
  int64_t num_trials() const { return num_trials_; }
  // grid: the number of combinations; random / sobol: 0.
  int64_t grid_size() const { return grid_size_; }
  // grid: the values each dimension takes, in the space's order.
  const std::vector<std::vector<ParamValue>>& grid_values() const { return grid_values_; }

  // Trial k's point, k >= 0 (grid: k < grid_size()). Throws lmsweep::Error otherwise.
  Point point(int64_t k) const;
  // Trial k's training seed.
  uint64_t seed(int64_t k) const { return trial_seed(seed_, k); }

  // What the points depend on, as canonical JSON: {"grid_points" (grid only), "method",
  // "seed", "space"}. A study resumed with a different signature would get other points:
  // the coordinator refuses it. trials, scheduler, objective, gpus_per_trial are not in it
  // (trials may grow when a study is extended).
  std::string signature() const;

 private:
  SearchSpace space_;
  SamplingMethod method_;
  uint64_t seed_;
  int grid_points_;
  int64_t num_trials_ = 0;
  int64_t grid_size_ = 0;
  std::vector<std::vector<ParamValue>> grid_values_;
  std::vector<int> sobol_dim_;  // [dimension] -> Sobol coordinate, -1 for fixed
  std::vector<uint64_t> name_hash_;  // [dimension] FNV-1a of the name (random)
  std::optional<SobolSequence> sobol_;
};

// The values a dimension takes on a grid with `grid_points` values per range (see above).
std::vector<ParamValue> grid_values(const Dimension& dim, int grid_points);

// Maps u in [0, 1) to a value of `dim` (see above). Fixed ignores u.
ParamValue value_at(const Dimension& dim, double u);

}  // namespace lmsweep::sweep
