#pragma once
// Evaluation metrics of LM-CLIP on plain row-major buffers (no LibTorch): per-class average
// precision as scikit-learn computes it, mAP overall / per head-middle-tail group / on single-
// and multi-label images, and the centroid-distance ratio of the paper's Table 4.
//
// All results are fractions (0..1), not percent. Everything is computed in double.
#include <cstdint>
#include <optional>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace lmsweep {

// Class indices of each frequency group (ascending).
struct ClassGroups {
  std::vector<int> head, middle, tail;
};

// Splits classes by their training-set counts: count >= head_min -> head,
// tail_below <= count < head_min -> middle, count < tail_below -> tail (the paper's 100 / 20).
// train_counts: [C]. Throws lmsweep::Error on a negative count or tail_below > head_min.
ClassGroups group_classes(const std::vector<int64_t>& train_counts, int64_t head_min = 100,
                          int64_t tail_below = 20);

// Average precision of one class, as sklearn.metrics.average_precision_score:
//   AP = sum_k (R_k - R_{k-1}) P_k over the distinct scores taken as thresholds, highest first
//   (equal scores form one threshold); a class with no positive gets 0 (scikit-learn >= 1.1).
// scores / labels: element i at [i * stride], i < n (a column of an n x stride matrix);
// labels 0 or 1; scores finite. O(n log n). Throws lmsweep::Error on bad input.
double average_precision(const float* scores, const uint8_t* labels, int64_t n, int64_t stride);

// Per-class AP of an n x c row-major score matrix (any monotone score, e.g. softmax
// probabilities) against n x c 0/1 labels. Returns [c].
std::vector<double> average_precision_per_class(const float* scores, const uint8_t* labels,
                                                int64_t n, int64_t c);

// Mean image-to-centroid distances of Table 4, pooled over (image, class) pairs.
struct DistanceRatio {
  double pd = 0;     // mean distance over pairs where the image holds the class
  double nd = 0;     // mean distance over pairs where it does not
  double ratio = 0;  // pd / nd
  int64_t positive_pairs = 0, negative_pairs = 0;
};
struct CentroidDistanceRatios {
  // Absent when a side has no pair (or ND is 0).
  std::optional<DistanceRatio> all, head, middle, tail;
};

// embeddings: n x d row-major, L2-normalised (not checked); labels: n x c of 0/1.
// Class centroid = mean embedding of the images holding the class; classes without any
// positive image have no centroid and are left out. groups may be null (then only `all`).
CentroidDistanceRatios centroid_distance_ratios(const float* embeddings, const uint8_t* labels,
                                                int64_t n, int64_t c, int64_t d,
                                                const ClassGroups* groups = nullptr);

// Per-class precision, recall and F1 of the predictions score >= threshold: the paper's Figure 6
// (threshold 0.5 on the softmax scores). As scikit-learn's precision_recall_fscore_support(
// average=None, zero_division=0): a class never predicted has precision 0, one with no positive
// has recall 0, and F1 is 0 when precision + recall is 0.
struct ClassPrecisionRecall {
  std::vector<double> precision, recall, f1;  // [C] each
};
// scores, labels: n x c row-major (labels 0/1).
ClassPrecisionRecall precision_recall_f1(const float* scores, const uint8_t* labels, int64_t n,
                                         int64_t c, double threshold = 0.5);

struct EvalMetrics {
  double map = 0;
  std::optional<double> map_head, map_middle, map_tail;  // when groups are known (and non-empty)
  std::vector<double> ap;                                 // [C]
  ClassPrecisionRecall at_threshold;                      // [C] each, at EvalInputs::threshold
  double map_single = 0, map_multi = 0;  // on images with exactly 1 / at least 2 labels
  std::optional<double> centroid_ratio, centroid_ratio_head, centroid_ratio_middle,
      centroid_ratio_tail;  // when embeddings are given
};

struct EvalInputs {
  const float* scores;     // n x c
  const uint8_t* labels;   // n x c, 0/1
  int64_t n, c;
  const float* embeddings = nullptr;  // n x d, L2-normalised
  int64_t d = 0;
  const ClassGroups* groups = nullptr;
  double threshold = 0.5;  // of precision / recall / F1
};

EvalMetrics evaluate(const EvalInputs& in);

// Keys: map, map_head, map_middle, map_tail (null when absent), ap, precision, recall, f1
// (lists, by class), map_single,
// map_multi, centroid_ratio, centroid_ratio_head, centroid_ratio_middle, centroid_ratio_tail
// (null when absent).
nlohmann::json to_json(const EvalMetrics& metrics);

}  // namespace lmsweep
