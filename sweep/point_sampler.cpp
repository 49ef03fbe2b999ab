#include "sweep/point_sampler.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <initializer_list>

#include <fmt/format.h>

#include "common/error.h"

namespace lmsweep::sweep {
namespace {

// Domain tags: the streams for values, trial seeds and Sobol scrambles never share inputs.
constexpr uint64_t kRandomTag = 0x72616e646f6d0001ULL;
constexpr uint64_t kSeedTag = 0x7365656400000002ULL;
constexpr uint64_t kSobolTag = 0x736f626f6c000003ULL;

uint64_t hash_words(std::initializer_list<uint64_t> words) {
  uint64_t h = 0x6a09e667f3bcc909ULL;
  for (uint64_t w : words) h = splitmix64(h ^ w);
  return h;
}

uint64_t fnv1a(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

// Drops the noise of floating-point arithmetic from grid values (0.05500000000000001 -> 0.055)
// so tables and flags show the numbers a person would write.
double clean(double v) { return std::strtod(fmt::format("{:.12g}", v).c_str(), nullptr); }

// Joe & Kuo, new-joe-kuo-6.21201, dimensions 2..21: degree s, coefficients a, initial m_1..m_s.
// (Dimension 1 is the van der Corput sequence, all m_i = 1.)
struct JoeKuoRow {
  int s;
  uint32_t a;
  uint32_t m[7];
};
constexpr JoeKuoRow kJoeKuo[20] = {
    {1, 0, {1}},
    {2, 1, {1, 3}},
    {3, 1, {1, 3, 1}},
    {3, 2, {1, 1, 1}},
    {4, 1, {1, 1, 3, 3}},
    {4, 4, {1, 3, 5, 13}},
    {5, 2, {1, 1, 5, 5, 17}},
    {5, 4, {1, 1, 5, 5, 5}},
    {5, 7, {1, 1, 7, 11, 19}},
    {5, 11, {1, 1, 5, 1, 1}},
    {5, 13, {1, 1, 1, 3, 11}},
    {5, 14, {1, 3, 5, 5, 31}},
    {6, 1, {1, 3, 3, 9, 7, 49}},
    {6, 13, {1, 1, 1, 15, 21, 21}},
    {6, 16, {1, 3, 1, 13, 27, 49}},
    {6, 19, {1, 1, 1, 15, 7, 5}},
    {6, 22, {1, 3, 1, 15, 13, 25}},
    {6, 25, {1, 1, 5, 5, 19, 61}},
    {7, 1, {1, 3, 7, 11, 23, 15, 103}},
    {7, 4, {1, 3, 7, 13, 13, 15, 69}},
};
constexpr int kBits = 32;

std::string dimension_list(const SearchSpace& space) {
  std::string out;
  for (const auto& d : space.dimensions()) out += (out.empty() ? "" : ", ") + d.name;
  return out;
}

}  // namespace

uint64_t splitmix64(uint64_t x) {
  uint64_t z = x + 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

double to_unit_interval(uint64_t bits) { return static_cast<double>(bits >> 11) * 0x1.0p-53; }

uint64_t trial_seed(uint64_t study_seed, int64_t k) {
  return hash_words({kSeedTag, study_seed, static_cast<uint64_t>(k)}) >> 1;
}

nlohmann::json to_json(const Point& point) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& [name, value] : point) j[name] = value.to_json();
  return j;
}

Point point_from_json(const nlohmann::json& j) {
  LMSWEEP_CHECK(j.is_object(), "a trial's parameters must be a JSON object, got {}", j.dump());
  Point p;
  for (auto it = j.begin(); it != j.end(); ++it) p.emplace_back(it.key(), ParamValue::from_json(it.value()));
  std::sort(p.begin(), p.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  return p;
}

bool fits(const SearchSpace& space, const Point& point) {
  for (const auto& d : space.dimensions()) {
    const ParamValue* v = find_value(point, d.name);
    if (!v) return false;
    switch (d.dist) {
      case Distribution::Choice:
      case Distribution::Fixed:
        if (std::find(d.values.begin(), d.values.end(), *v) == d.values.end()) return false;
        break;
      case Distribution::IntUniform:
        if (!v->is_int() || v->as_int() < d.low || v->as_int() > d.high) return false;
        break;
      default:
        if (v->is_string() || v->as_double() < d.low || v->as_double() > d.high) return false;
    }
  }
  return true;
}

const ParamValue* find_value(const Point& point, const std::string& name) {
  for (const auto& [n, v] : point) {
    if (n == name) return &v;
  }
  return nullptr;
}

// --- Sobol ---------------------------------------------------------------------------------

SobolSequence::SobolSequence(int dims, uint64_t scramble_seed, bool scramble) : dims_(dims) {
  LMSWEEP_CHECK(dims >= 1 && dims <= kMaxDimensions,
                "sobol supports 1 to {} varying dimensions, got {}; use method = random",
                kMaxDimensions, dims);
  directions_.assign(dims, std::vector<uint32_t>(kBits));
  shift_.assign(dims, 0);
  for (int d = 0; d < dims; ++d) {
    auto& v = directions_[d];  // v[i] holds V_{i+1} = m_{i+1} << (32 - (i+1))
    if (d == 0) {
      for (int i = 0; i < kBits; ++i) v[i] = uint32_t{1} << (kBits - 1 - i);
    } else {
      const JoeKuoRow& row = kJoeKuo[d - 1];
      const int s = row.s;
      for (int i = 0; i < s; ++i) v[i] = row.m[i] << (kBits - 1 - i);
      // Recurrence of Bratley & Fox / Joe & Kuo (their sobol.cc).
      for (int i = s; i < kBits; ++i) {
        v[i] = v[i - s] ^ (v[i - s] >> s);
        for (int k = 1; k < s; ++k) {
          if ((row.a >> (s - 1 - k)) & 1u) v[i] ^= v[i - k];
        }
      }
    }
    if (!scramble) continue;
    // Linear matrix scramble: digit r of a coordinate (r = 0 the most significant) becomes
    // the parity of (row r of a random lower-triangular unit-diagonal matrix) & digits 0..r.
    // Applied to the direction numbers it scrambles every point (the map is linear), keeps
    // the first m digits a bijection of the first m digits, hence the net property.
    std::vector<uint32_t> rows(kBits);
    for (int r = 0; r < kBits; ++r) {
      const uint32_t keep = r == kBits - 1 ? ~uint32_t{0} : ~((uint32_t{1} << (kBits - 1 - r)) - 1);
      const uint32_t diagonal = uint32_t{1} << (kBits - 1 - r);
      rows[r] = (static_cast<uint32_t>(hash_words({scramble_seed, static_cast<uint64_t>(d),
                                                   static_cast<uint64_t>(r)}) >> 32) & keep) |
                diagonal;
    }
    for (auto& dir : v) {
      uint32_t out = 0;
      for (int r = 0; r < kBits; ++r) {
        if (__builtin_parity(rows[r] & dir)) out |= uint32_t{1} << (kBits - 1 - r);
      }
      dir = out;
    }
    // Digital shift: XOR with random digits.
    shift_[d] = static_cast<uint32_t>(
        hash_words({scramble_seed, static_cast<uint64_t>(d), uint64_t{0xffff}}) >> 32);
  }
}

std::vector<double> SobolSequence::point(uint64_t k) const {
  LMSWEEP_CHECK(k < (uint64_t{1} << kBits), "sobol point {} is beyond 2^32", k);
  std::vector<double> out(dims_);
  for (int d = 0; d < dims_; ++d) {
    uint32_t x = shift_[d];
    for (int b = 0; b < kBits && (k >> b) != 0; ++b) {
      if ((k >> b) & 1u) x ^= directions_[d][b];
    }
    out[d] = static_cast<double>(x) * 0x1.0p-32;
  }
  return out;
}

// --- values ----------------------------------------------------------------------------------

ParamValue value_at(const Dimension& dim, double u) {
  switch (dim.dist) {
    case Distribution::Uniform:
      return ParamValue(std::clamp(dim.low + u * (dim.high - dim.low), dim.low, dim.high));
    case Distribution::LogUniform: {
      const double lo = std::log(dim.low), hi = std::log(dim.high);
      return ParamValue(std::clamp(std::exp(lo + u * (hi - lo)), dim.low, dim.high));
    }
    case Distribution::IntUniform: {
      const double n = dim.high - dim.low + 1;
      const double idx = std::min(std::floor(u * n), n - 1);
      return ParamValue(static_cast<int64_t>(dim.low + idx));
    }
    case Distribution::Choice: {
      const size_t n = dim.values.size();
      const size_t idx = std::min(static_cast<size_t>(u * static_cast<double>(n)), n - 1);
      return dim.values[idx];
    }
    case Distribution::Fixed:
      return dim.values.at(0);
  }
  return ParamValue();
}

std::vector<ParamValue> grid_values(const Dimension& dim, int grid_points) {
  LMSWEEP_CHECK(grid_points >= 2, "grid_points = {}: must be >= 2", grid_points);
  if (dim.dist == Distribution::Choice || dim.dist == Distribution::Fixed) return dim.values;
  const int n = grid_points;
  std::vector<double> reals;  // in order, without repeats
  for (int i = 0; i < n; ++i) {
    const double t = static_cast<double>(i) / (n - 1);
    double v = 0;
    if (dim.dist == Distribution::IntUniform) {
      v = static_cast<double>(std::llround(dim.low + t * (dim.high - dim.low)));
    } else if (i == 0 || i == n - 1) {
      v = i == 0 ? dim.low : dim.high;  // the bounds exactly
    } else if (dim.dist == Distribution::Uniform) {
      v = clean(dim.low + t * (dim.high - dim.low));
    } else {  // LogUniform: geometric
      v = clean(dim.low * std::pow(dim.high / dim.low, t));
    }
    if (std::find(reals.begin(), reals.end(), v) == reals.end()) reals.push_back(v);
  }
  std::vector<ParamValue> out;
  out.reserve(reals.size());
  for (double v : reals) {
    if (dim.dist == Distribution::IntUniform) {
      out.emplace_back(static_cast<int64_t>(v));
    } else {
      out.emplace_back(v);
    }
  }
  return out;
}

// --- sampler ---------------------------------------------------------------------------------

PointSampler::PointSampler(SearchSpace space, const SweepConfig& config)
    : space_(std::move(space)),
      method_(config.method),
      seed_(config.seed),
      grid_points_(config.grid_points) {
  LMSWEEP_CHECK(!space_.empty(),
                "[space] is empty: give at least one dimension, e.g. gamma-neg = uniform(2, 12)");
  const auto& dims = space_.dimensions();
  switch (method_) {
    case SamplingMethod::Grid: {
      constexpr int64_t kMaxGrid = 1000000000;
      grid_size_ = 1;
      std::string sizes;
      for (const auto& d : dims) {
        grid_values_.push_back(sweep::grid_values(d, grid_points_));
        const auto n = static_cast<int64_t>(grid_values_.back().size());
        sizes += fmt::format("{}{} {}", sizes.empty() ? "" : " x ", d.name, n);
        LMSWEEP_CHECK(grid_size_ <= kMaxGrid / n,
                      "[sweep] method = grid: the grid has more than 10^9 points ({}); lower "
                      "grid_points or use method = random", sizes);
        grid_size_ *= n;
      }
      LMSWEEP_CHECK(config.trials <= grid_size_,
                    "[sweep] trials = {} exceeds the grid's {} points ({}); leave trials out to "
                    "run the whole grid once, or raise grid_points", config.trials, grid_size_,
                    sizes);
      num_trials_ = config.trials > 0 ? config.trials : grid_size_;
      break;
    }
    case SamplingMethod::Random:
    case SamplingMethod::Sobol:
    case SamplingMethod::Tpe: {  // tpe: the Sobol design for its startup points
      LMSWEEP_CHECK(config.trials > 0, "[sweep] trials is missing; method = {} needs the number "
                    "of trials (trials = 100)", to_string(method_));
      num_trials_ = config.trials;
      for (const auto& d : dims) name_hash_.push_back(fnv1a(d.name));
      if (method_ != SamplingMethod::Random) {
        int n = 0;
        for (const auto& d : dims) sobol_dim_.push_back(d.dist == Distribution::Fixed ? -1 : n++);
        LMSWEEP_CHECK(n <= SobolSequence::kMaxDimensions,
                      "[sweep] method = {} supports up to {} varying dimensions (its design is a "
                      "Sobol sequence), the space has {} ({}); use method = random", to_string(method_),
                      SobolSequence::kMaxDimensions, n, dimension_list(space_));
        if (n > 0) sobol_.emplace(n, hash_words({kSobolTag, seed_}));
      }
      break;
    }
  }
}

Point PointSampler::point(int64_t k) const {
  LMSWEEP_CHECK(k >= 0, "trial number {} is negative", k);
  const auto& dims = space_.dimensions();
  Point p;
  p.reserve(dims.size());
  switch (method_) {
    case SamplingMethod::Grid: {
      LMSWEEP_CHECK(k < grid_size_, "trial {} is beyond the grid's {} points", k, grid_size_);
      std::vector<size_t> idx(dims.size());
      int64_t rem = k;
      for (size_t d = dims.size(); d-- > 0;) {  // last dimension varies fastest
        const auto n = static_cast<int64_t>(grid_values_[d].size());
        idx[d] = static_cast<size_t>(rem % n);
        rem /= n;
      }
      for (size_t d = 0; d < dims.size(); ++d) p.emplace_back(dims[d].name, grid_values_[d][idx[d]]);
      break;
    }
    case SamplingMethod::Random:
      for (size_t d = 0; d < dims.size(); ++d) {
        const double u = to_unit_interval(
            hash_words({kRandomTag, seed_, static_cast<uint64_t>(k), name_hash_[d]}));
        p.emplace_back(dims[d].name, value_at(dims[d], u));
      }
      break;
    case SamplingMethod::Sobol:
    case SamplingMethod::Tpe: {
      const std::vector<double> u =
          sobol_ ? sobol_->point(static_cast<uint64_t>(k)) : std::vector<double>{};
      for (size_t d = 0; d < dims.size(); ++d) {
        p.emplace_back(dims[d].name, value_at(dims[d], sobol_dim_[d] < 0 ? 0.0 : u[sobol_dim_[d]]));
      }
      break;
    }
  }
  return p;
}

std::string PointSampler::signature() const {
  nlohmann::json j{{"method", to_string(method_)}, {"seed", seed_}, {"space", space_.to_json()}};
  if (method_ == SamplingMethod::Grid) j["grid_points"] = grid_points_;
  return j.dump();
}

}  // namespace lmsweep::sweep
