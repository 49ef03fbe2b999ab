#include "eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include <nlohmann/json.hpp>

#include "common/error.h"

namespace lmsweep {
namespace {

struct ScoredLabel {
  float score;
  uint8_t label;
};

// AP of one column whose (score, label) pairs are in `buf` (reordered in place).
// Port of scikit-learn 1.5 (the version the reference environment pins):
// sklearn/metrics/_ranking.py, _binary_clf_curve (sort by score descending, one threshold per
// distinct score: tps = cumulative positives, fps = cumulative count - tps), then
// precision_recall_curve (precision = tps / (tps + fps); recall = tps / tps[-1], or all ones
// when there is no positive) and _binary_uninterpolated_average_precision
// (-sum(diff(recall) * precision[:-1]), i.e. sum_k (R_k - R_{k-1}) P_k).
// With no positive, recall is constant, every term vanishes and the AP is 0.
double ap_of_pairs(std::vector<ScoredLabel>& buf, int64_t positives) {
  if (positives == 0) return 0.0;
  // Order inside a group of equal scores does not matter: the group is one threshold.
  std::sort(buf.begin(), buf.end(),
            [](const ScoredLabel& a, const ScoredLabel& b) { return a.score > b.score; });
  const auto n = static_cast<int64_t>(buf.size());
  const double total = static_cast<double>(positives);
  double ap = 0.0;
  int64_t tp = 0, tp_before = 0;
  for (int64_t i = 0; i < n;) {
    int64_t j = i;
    const float s = buf[i].score;
    for (; j < n && buf[j].score == s; ++j) tp += buf[j].label;
    if (tp != tp_before) {
      const double recall_step = static_cast<double>(tp - tp_before) / total;
      const double precision = static_cast<double>(tp) / static_cast<double>(j);
      ap += recall_step * precision;
      tp_before = tp;
    }
    i = j;
  }
  return ap;
}

// Fills buf with column `column` of an n-row matrix with row stride `stride`; checks values.
// Returns the number of positives.
int64_t gather_column(const float* scores, const uint8_t* labels, int64_t n, int64_t stride,
                      int64_t column, std::vector<ScoredLabel>& buf) {
  buf.resize(static_cast<size_t>(n));
  int64_t positives = 0;
  for (int64_t i = 0; i < n; ++i) {
    const float s = scores[i * stride + column];
    const uint8_t y = labels[i * stride + column];
    if (!std::isfinite(s)) {
      throw_error(
          "average precision: the score of row {}, class {} is {}; scores must be finite "
          "(a NaN usually means training diverged: lower the learning rate)",
          i, column, s);
    }
    LMSWEEP_CHECK(y <= 1, "average precision: the label of row {}, class {} is {}; labels must be 0 or 1",
                  i, column, static_cast<int>(y));
    buf[static_cast<size_t>(i)] = {s, y};
    positives += y;
  }
  return positives;
}

void check_matrix(const void* scores, const void* labels, int64_t n, int64_t c,
                  const char* what) {
  LMSWEEP_CHECK(n >= 0 && c >= 0, "{}: invalid shape {} x {} (rows x classes must be >= 0)",
                what, n, c);
  LMSWEEP_CHECK(n * c == 0 || (scores != nullptr && labels != nullptr),
                "{}: null score or label buffer for a {} x {} matrix", what, n, c);
}

// Mean of ap over the classes in idx; nullopt when idx is empty (the reference's np.nanmean of
// nothing is NaN).
std::optional<double> mean_over(const std::vector<double>& ap, const std::vector<int>& idx) {
  if (idx.empty()) return std::nullopt;
  double sum = 0.0;
  for (int k : idx) sum += ap[static_cast<size_t>(k)];
  return sum / static_cast<double>(idx.size());
}

double mean_of(const std::vector<double>& v) {
  if (v.empty()) return 0.0;
  double sum = 0.0;
  for (double x : v) sum += x;
  return sum / static_cast<double>(v.size());
}

void check_groups(const ClassGroups& g, int64_t c) {
  auto check = [c](const std::vector<int>& idx, const char* name) {
    for (int k : idx) {
      LMSWEEP_CHECK(k >= 0 && k < c,
                    "class groups: {} class index {} is out of range for {} classes; build the "
                    "groups from the training counts of this dataset",
                    name, k, c);
    }
  };
  check(g.head, "head");
  check(g.middle, "middle");
  check(g.tail, "tail");
}

// mAP on the rows whose label count satisfies keep(count): per-class AP on that subset (classes
// without a positive in it count as 0), mean over all C classes.
template <typename Keep>
double map_on_rows(const float* scores, const uint8_t* labels, int64_t n, int64_t c, Keep keep) {
  std::vector<float> sub_scores;
  std::vector<uint8_t> sub_labels;
  int64_t rows = 0;
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* y = labels + i * c;
    int64_t count = 0;
    for (int64_t k = 0; k < c; ++k) count += y[k] != 0;
    if (!keep(count)) continue;
    sub_scores.insert(sub_scores.end(), scores + i * c, scores + (i + 1) * c);
    sub_labels.insert(sub_labels.end(), y, y + c);
    ++rows;
  }
  return mean_of(average_precision_per_class(sub_scores.data(), sub_labels.data(), rows, c));
}

std::optional<DistanceRatio> make_ratio(double pos_sum, int64_t pos_n, double neg_sum,
                                        int64_t neg_n) {
  if (pos_n == 0 || neg_n == 0 || !(neg_sum > 0)) return std::nullopt;
  DistanceRatio r;
  r.pd = pos_sum / static_cast<double>(pos_n);
  r.nd = neg_sum / static_cast<double>(neg_n);
  r.ratio = r.pd / r.nd;
  r.positive_pairs = pos_n;
  r.negative_pairs = neg_n;
  return r;
}

std::optional<double> ratio_of(const std::optional<DistanceRatio>& r) {
  if (!r) return std::nullopt;
  return r->ratio;
}

nlohmann::json opt_json(const std::optional<double>& v) {
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

}  // namespace

ClassGroups group_classes(const std::vector<int64_t>& train_counts, int64_t head_min,
                          int64_t tail_below) {
  LMSWEEP_CHECK(tail_below <= head_min,
                "class groups: the tail threshold {} is above the head threshold {}; need "
                "tail_below <= head_min (defaults 20 and 100)",
                tail_below, head_min);
  ClassGroups g;
  for (size_t k = 0; k < train_counts.size(); ++k) {
    const int64_t count = train_counts[k];
    LMSWEEP_CHECK(count >= 0, "class groups: class {} has a negative training count {}", k, count);
    if (count >= head_min) {
      g.head.push_back(static_cast<int>(k));
    } else if (count >= tail_below) {
      g.middle.push_back(static_cast<int>(k));
    } else {
      g.tail.push_back(static_cast<int>(k));
    }
  }
  return g;
}

double average_precision(const float* scores, const uint8_t* labels, int64_t n, int64_t stride) {
  LMSWEEP_CHECK(stride >= 1, "average precision: stride {} must be >= 1", stride);
  check_matrix(scores, labels, n, 1, "average precision");
  std::vector<ScoredLabel> buf;
  const int64_t positives = gather_column(scores, labels, n, stride, 0, buf);
  return ap_of_pairs(buf, positives);
}

std::vector<double> average_precision_per_class(const float* scores, const uint8_t* labels,
                                                int64_t n, int64_t c) {
  check_matrix(scores, labels, n, c, "average precision");
  std::vector<double> ap(static_cast<size_t>(c), 0.0);
  std::vector<ScoredLabel> buf;  // reused across classes
  for (int64_t k = 0; k < c; ++k) {
    const int64_t positives = gather_column(scores, labels, n, c, k, buf);
    ap[static_cast<size_t>(k)] = ap_of_pairs(buf, positives);
  }
  return ap;
}

// Reference: damilab/lm-clip test.py (after "Calculate class centroids"). Centroid of class i =
// mean of the (L2-normalised) image features of the test images holding i; then for every class
// i and every test image j, torch.nn.functional.pairwise_distance(feature_j, centroid_i) goes to
// the positive list when j holds i and to the negative list otherwise (and to the head / middle /
// tail lists of i's group). PD and ND are plain means over those lists, i.e. pooled over all
// (image, class) pairs, not per class then averaged; ratio = PD / ND. Images without any label
// still give negative pairs. pairwise_distance computes ||x1 - x2 + eps||_2 with eps = 1e-6,
// reproduced here. The reference cannot handle a class with no positive test image
// (torch.stack of an empty list raises); here such a class has no centroid and gives no pair.
CentroidDistanceRatios centroid_distance_ratios(const float* embeddings, const uint8_t* labels,
                                                int64_t n, int64_t c, int64_t d,
                                                const ClassGroups* groups) {
  check_matrix(embeddings, labels, n, c, "centroid distance ratio");
  LMSWEEP_CHECK(d >= 1, "centroid distance ratio: embedding size {} must be >= 1", d);
  LMSWEEP_CHECK(n == 0 || embeddings != nullptr, "centroid distance ratio: null embeddings");
  constexpr double kPairwiseDistanceEps = 1e-6;  // torch.nn.functional.pairwise_distance default

  // Group of each class: 0 head, 1 middle, 2 tail, -1 none.
  std::vector<int> group_of(static_cast<size_t>(c), -1);
  if (groups != nullptr) {
    check_groups(*groups, c);
    for (int k : groups->head) group_of[static_cast<size_t>(k)] = 0;
    for (int k : groups->middle) group_of[static_cast<size_t>(k)] = 1;
    for (int k : groups->tail) group_of[static_cast<size_t>(k)] = 2;
  }

  // Centroids, stored transposed (d x c) so that the distance loop below runs over classes in
  // the innermost loop: contiguous, vectorisable, and exact (no ||x||^2 - 2xc + ||c||^2
  // cancellation).
  std::vector<double> centroid_t(static_cast<size_t>(d * c), 0.0);
  std::vector<int64_t> members(static_cast<size_t>(c), 0);
  for (int64_t i = 0; i < n; ++i) {
    const float* x = embeddings + i * d;
    const uint8_t* y = labels + i * c;
    for (int64_t k = 0; k < c; ++k) {
      LMSWEEP_CHECK(y[k] <= 1,
                    "centroid distance ratio: the label of row {}, class {} is {}; labels must "
                    "be 0 or 1",
                    i, k, static_cast<int>(y[k]));
      if (y[k] == 0) continue;
      ++members[static_cast<size_t>(k)];
      for (int64_t j = 0; j < d; ++j) centroid_t[static_cast<size_t>(j * c + k)] += x[j];
    }
  }
  for (int64_t j = 0; j < d; ++j) {
    for (int64_t k = 0; k < c; ++k) {
      const auto m = members[static_cast<size_t>(k)];
      double& v = centroid_t[static_cast<size_t>(j * c + k)];
      // x - centroid + eps == x - (centroid - eps): fold eps in once.
      v = (m > 0 ? v / static_cast<double>(m) : 0.0) - kPairwiseDistanceEps;
    }
  }

  // Sums and counts: index 0 all, 1 head, 2 middle, 3 tail.
  double pos_sum[4] = {0, 0, 0, 0}, neg_sum[4] = {0, 0, 0, 0};
  int64_t pos_n[4] = {0, 0, 0, 0}, neg_n[4] = {0, 0, 0, 0};
  std::vector<double> sq(static_cast<size_t>(c));
  for (int64_t i = 0; i < n; ++i) {
    const float* x = embeddings + i * d;
    std::fill(sq.begin(), sq.end(), 0.0);
    double* sqp = sq.data();
    for (int64_t j = 0; j < d; ++j) {
      const double xj = x[j];
      const double* row = centroid_t.data() + j * c;
      for (int64_t k = 0; k < c; ++k) {
        const double t = xj - row[k];
        sqp[k] += t * t;
      }
    }
    const uint8_t* y = labels + i * c;
    for (int64_t k = 0; k < c; ++k) {
      if (members[static_cast<size_t>(k)] == 0) continue;
      const double dist = std::sqrt(sqp[k]);
      const int g = group_of[static_cast<size_t>(k)];
      double* sums = y[k] ? pos_sum : neg_sum;
      int64_t* counts = y[k] ? pos_n : neg_n;
      sums[0] += dist;
      ++counts[0];
      if (g >= 0) {
        sums[g + 1] += dist;
        ++counts[g + 1];
      }
    }
  }

  CentroidDistanceRatios out;
  out.all = make_ratio(pos_sum[0], pos_n[0], neg_sum[0], neg_n[0]);
  if (groups != nullptr) {
    out.head = make_ratio(pos_sum[1], pos_n[1], neg_sum[1], neg_n[1]);
    out.middle = make_ratio(pos_sum[2], pos_n[2], neg_sum[2], neg_n[2]);
    out.tail = make_ratio(pos_sum[3], pos_n[3], neg_sum[3], neg_n[3]);
  }
  return out;
}

ClassPrecisionRecall precision_recall_f1(const float* scores, const uint8_t* labels, int64_t n, int64_t c,
                                         double threshold) {
  check_matrix(scores, labels, n, c, "precision_recall_f1");
  std::vector<int64_t> tp(c, 0), predicted(c, 0), positive(c, 0);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t k = 0; k < c; ++k) {
      const bool yes = scores[i * c + k] >= threshold;
      const bool truth = labels[i * c + k] != 0;
      predicted[k] += yes;
      positive[k] += truth;
      tp[k] += yes && truth;
    }
  }
  ClassPrecisionRecall out;
  for (int64_t k = 0; k < c; ++k) {
    const double p = predicted[k] > 0 ? static_cast<double>(tp[k]) / predicted[k] : 0.0;
    const double r = positive[k] > 0 ? static_cast<double>(tp[k]) / positive[k] : 0.0;
    out.precision.push_back(p);
    out.recall.push_back(r);
    out.f1.push_back(p + r > 0 ? 2 * p * r / (p + r) : 0.0);
  }
  return out;
}

EvalMetrics evaluate(const EvalInputs& in) {
  check_matrix(in.scores, in.labels, in.n, in.c, "evaluate");
  EvalMetrics m;
  m.ap = average_precision_per_class(in.scores, in.labels, in.n, in.c);
  m.at_threshold = precision_recall_f1(in.scores, in.labels, in.n, in.c, in.threshold);
  m.map = mean_of(m.ap);

  // Reference: damilab/lm-clip utils.py evaluate_mlc / eval_map_subset: the group mAP is
  // np.nanmean of the full-set APs of the group's classes.
  if (in.groups != nullptr) {
    check_groups(*in.groups, in.c);
    m.map_head = mean_over(m.ap, in.groups->head);
    m.map_middle = mean_over(m.ap, in.groups->middle);
    m.map_tail = mean_over(m.ap, in.groups->tail);
  }

  // Reference: damilab/lm-clip test.py ("Calculate the average precision on only multi-label /
  // single-label samples"): keep the rows with label sum > 1 (multi) or == 1 (single), then
  // evaluate_mlc -> eval_map: average_precision_score(labels, preds, average=None) and
  // np.nanmean over all C classes. With scikit-learn 1.5.1 (its environment.yml) a class with no
  // positive in the subset scores 0, not NaN, so it is NOT dropped: it pulls the mean down.
  // An empty subset (where sklearn would raise) gives 0 here.
  m.map_single = map_on_rows(in.scores, in.labels, in.n, in.c,
                             [](int64_t count) { return count == 1; });
  m.map_multi = map_on_rows(in.scores, in.labels, in.n, in.c,
                            [](int64_t count) { return count >= 2; });

  if (in.embeddings != nullptr) {
    const auto r = centroid_distance_ratios(in.embeddings, in.labels, in.n, in.c, in.d, in.groups);
    m.centroid_ratio = ratio_of(r.all);
    m.centroid_ratio_head = ratio_of(r.head);
    m.centroid_ratio_middle = ratio_of(r.middle);
    m.centroid_ratio_tail = ratio_of(r.tail);
  }
  return m;
}

nlohmann::json to_json(const EvalMetrics& m) {
  nlohmann::json j;
  j["map"] = m.map;
  j["map_head"] = opt_json(m.map_head);
  j["map_middle"] = opt_json(m.map_middle);
  j["map_tail"] = opt_json(m.map_tail);
  j["ap"] = m.ap;
  j["precision"] = m.at_threshold.precision;
  j["recall"] = m.at_threshold.recall;
  j["f1"] = m.at_threshold.f1;
  j["map_single"] = m.map_single;
  j["map_multi"] = m.map_multi;
  j["centroid_ratio"] = opt_json(m.centroid_ratio);
  j["centroid_ratio_head"] = opt_json(m.centroid_ratio_head);
  j["centroid_ratio_middle"] = opt_json(m.centroid_ratio_middle);
  j["centroid_ratio_tail"] = opt_json(m.centroid_ratio_tail);
  return j;
}

}  // namespace lmsweep
