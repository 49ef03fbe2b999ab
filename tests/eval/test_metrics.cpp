// Tests of src/eval/metrics: scikit-learn's average precision, class groups, single / multi-label
// subsets, the centroid-distance ratio and the JSON output.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <functional>
#include <iostream>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/error.h"
#include "eval/metrics.h"
#include "support/shared_data.h"

namespace lmsweep {
namespace {

using lmsweep::testing::read_text_file;
using lmsweep::testing::shared_file;

double ap1(const std::vector<float>& s, const std::vector<uint8_t>& y) {
  return average_precision(s.data(), y.data(), static_cast<int64_t>(s.size()), 1);
}

// average_precision_score straight from its definition, O(n^2): every distinct score t is a
// threshold, taken from the highest; P(t) and R(t) count the rows with score >= t.
double brute_force_ap(const std::vector<float>& s, const std::vector<uint8_t>& y) {
  int64_t positives = 0;
  for (auto v : y) positives += v;
  if (positives == 0) return 0.0;
  std::set<float, std::greater<float>> thresholds(s.begin(), s.end());
  double ap = 0.0, recall_before = 0.0;
  for (float t : thresholds) {
    int64_t tp = 0, count = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] >= t) {
        ++count;
        tp += y[i];
      }
    }
    const double recall = static_cast<double>(tp) / static_cast<double>(positives);
    ap += (recall - recall_before) * static_cast<double>(tp) / static_cast<double>(count);
    recall_before = recall;
  }
  return ap;
}

// --- average precision -------------------------------------------------------------------

TEST(EvalAp, MatchesScikitLearnCases) {
  LMSWEEP_REQUIRE_SHARED("testdata/loss_metric_cases.json");
  const auto j = nlohmann::json::parse(read_text_file(shared_file("testdata/loss_metric_cases.json")));
  const auto& cases = j.at("average_precision");
  ASSERT_FALSE(cases.empty());
  for (const auto& tc : cases) {
    const int64_t n = tc.at("N").get<int64_t>(), c = tc.at("C").get<int64_t>();
    std::vector<float> scores;
    std::vector<uint8_t> labels;
    for (const auto& row : tc.at("scores")) {
      for (const auto& v : row) scores.push_back(static_cast<float>(v.get<double>()));
    }
    for (const auto& row : tc.at("labels")) {
      for (const auto& v : row) labels.push_back(static_cast<uint8_t>(v.get<int>()));
    }
    ASSERT_EQ(scores.size(), static_cast<size_t>(n * c));
    ASSERT_EQ(labels.size(), static_cast<size_t>(n * c));
    const auto ap = average_precision_per_class(scores.data(), labels.data(), n, c);
    const auto expected = tc.at("ap").get<std::vector<double>>();
    ASSERT_EQ(ap.size(), expected.size());
    for (size_t k = 0; k < ap.size(); ++k) EXPECT_NEAR(ap[k], expected[k], 1e-9) << "class " << k;
    const auto m = evaluate({scores.data(), labels.data(), n, c});
    EXPECT_NEAR(m.map, tc.at("map").get<double>(), 1e-9);
  }
}

TEST(EvalAp, ScikitLearnDocstringExample) {
  // sklearn's average_precision_score docstring: y_true [0,0,1,1], scores [.1,.4,.35,.8] -> 0.83.
  EXPECT_NEAR(ap1({0.1f, 0.4f, 0.35f, 0.8f}, {0, 0, 1, 1}), 5.0 / 6.0, 1e-12);
}

TEST(EvalAp, TiesFormOneThreshold) {
  // Thresholds .9 (1 tp of 2), .5 (2 of 4), .1 (3 of 5): (1/3)(1/2) + (1/3)(2/4) + (1/3)(3/5).
  EXPECT_NEAR(ap1({0.9f, 0.9f, 0.5f, 0.5f, 0.1f}, {1, 0, 1, 0, 1}), 8.0 / 15.0, 1e-12);
  // The order of rows inside a tie must not matter.
  EXPECT_NEAR(ap1({0.9f, 0.9f, 0.5f, 0.5f, 0.1f}, {0, 1, 0, 1, 1}), 8.0 / 15.0, 1e-12);
  // All scores equal: one threshold, AP = prevalence.
  EXPECT_NEAR(ap1({0.3f, 0.3f, 0.3f, 0.3f}, {1, 0, 0, 0}), 0.25, 1e-12);
}

TEST(EvalAp, AllNegativeClassIsZero) {
  EXPECT_EQ(ap1({0.9f, 0.1f, 0.5f}, {0, 0, 0}), 0.0);
  EXPECT_EQ(ap1({}, {}), 0.0);
}

TEST(EvalAp, PerfectAndWorstRanking) {
  EXPECT_DOUBLE_EQ(ap1({0.9f, 0.8f, 0.2f, 0.1f}, {1, 1, 0, 0}), 1.0);
  EXPECT_DOUBLE_EQ(ap1({0.9f, 0.9f, 0.2f, 0.1f}, {1, 1, 0, 0}), 1.0);  // tie among positives
  // Positives last: (1/2)(1/3) + (1/2)(2/4).
  EXPECT_NEAR(ap1({0.9f, 0.8f, 0.2f, 0.1f}, {0, 0, 1, 1}), 1.0 / 6.0 + 1.0 / 4.0, 1e-12);
}

TEST(EvalAp, RandomTiedScoresMatchDefinition) {
  std::mt19937 rng(1234);
  std::uniform_int_distribution<int> level(0, 9);  // 10 score levels: many ties
  std::bernoulli_distribution positive(0.3);
  const int64_t n = 200, c = 6;
  std::vector<float> scores(n * c);
  std::vector<uint8_t> labels(n * c);
  for (int64_t i = 0; i < n * c; ++i) {
    scores[i] = static_cast<float>(level(rng)) / 10.0f;
    labels[i] = positive(rng) ? 1 : 0;
  }
  const auto ap = average_precision_per_class(scores.data(), labels.data(), n, c);
  for (int64_t k = 0; k < c; ++k) {
    std::vector<float> s;
    std::vector<uint8_t> y;
    for (int64_t i = 0; i < n; ++i) {
      s.push_back(scores[i * c + k]);
      y.push_back(labels[i * c + k]);
    }
    EXPECT_NEAR(ap[k], brute_force_ap(s, y), 1e-12) << "class " << k;
    // The strided single-column entry point agrees with the per-class one.
    EXPECT_EQ(average_precision(scores.data() + k, labels.data() + k, n, c), ap[k]);
  }
}

TEST(EvalAp, RejectsBadInput) {
  EXPECT_THROW(ap1({0.5f, std::nanf("")}, {1, 0}), Error);
  EXPECT_THROW(ap1({0.5f, INFINITY}, {1, 0}), Error);
  EXPECT_THROW(ap1({0.5f, 0.4f}, {2, 0}), Error);
  try {
    ap1({0.5f, std::nanf("")}, {1, 0});
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("row 1"), std::string::npos) << e.what();
  }
}

// --- class groups ------------------------------------------------------------------------

ClassGroups read_class_split(const std::string& relative) {
  const auto j = nlohmann::json::parse(read_text_file(shared_file(relative)));
  ClassGroups g;
  g.head = j.at("head").get<std::vector<int>>();
  g.middle = j.at("middle").get<std::vector<int>>();
  g.tail = j.at("tail").get<std::vector<int>>();
  return g;
}

TEST(EvalGroups, Thresholds) {
  const auto g = group_classes({100, 99, 20, 19, 0, 500});
  EXPECT_EQ(g.head, (std::vector<int>{0, 5}));
  EXPECT_EQ(g.middle, (std::vector<int>{1, 2}));
  EXPECT_EQ(g.tail, (std::vector<int>{3, 4}));
  const auto custom = group_classes({10, 5, 4}, 10, 5);
  EXPECT_EQ(custom.head, (std::vector<int>{0}));
  EXPECT_EQ(custom.middle, (std::vector<int>{1}));
  EXPECT_EQ(custom.tail, (std::vector<int>{2}));
  EXPECT_THROW(group_classes({1, 2}, 10, 20), Error);
  EXPECT_THROW(group_classes({1, -2}), Error);
}

TEST(EvalGroups, VocMltMatchesReferenceSplit) {
  LMSWEEP_REQUIRE_SHARED("datasets/voc_mlt/class_split.json");
  // Training counts of VOC-MLT (../shared/datasets/README.md).
  const std::vector<int64_t> counts = {6,   34, 8,  14, 154, 17,  249, 29, 479, 4,
                                       240, 48, 11, 20, 775, 100, 5,   82, 7,   64};
  const auto g = group_classes(counts);
  const auto ref = read_class_split("datasets/voc_mlt/class_split.json");
  EXPECT_EQ(g.head, ref.head);
  EXPECT_EQ(g.middle, ref.middle);
  EXPECT_EQ(g.tail, ref.tail);
  EXPECT_EQ(g.head.size(), 6u);
  EXPECT_EQ(g.middle.size(), 6u);
  EXPECT_EQ(g.tail.size(), 8u);
}

TEST(EvalGroups, CocoMltCountsFromSplitMatchReferenceSplit) {
  LMSWEEP_REQUIRE_SHARED("datasets/coco_mlt/class_split.json");
  LMSWEEP_REQUIRE_SHARED("datasets/coco_mlt/coco_lt_train.txt");
  std::vector<int64_t> counts(80, 0);
  std::ifstream in(shared_file("datasets/coco_mlt/coco_lt_train.txt"));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string path;
    fields >> path;
    int k;
    while (fields >> k) {
      ASSERT_TRUE(k >= 0 && k < 80) << line;
      ++counts[k];
    }
  }
  const auto g = group_classes(counts);
  const auto ref = read_class_split("datasets/coco_mlt/class_split.json");
  EXPECT_EQ(g.head, ref.head);
  EXPECT_EQ(g.middle, ref.middle);
  EXPECT_EQ(g.tail, ref.tail);
  EXPECT_EQ(g.head.size(), 22u);
  EXPECT_EQ(g.middle.size(), 33u);
  EXPECT_EQ(g.tail.size(), 25u);
}

// --- evaluate: groups, single / multi-label subsets ----------------------------------------

// 5 images x 3 classes. Single-label rows: 0, 1. Multi-label rows: 2, 3. Row 4 has no label.
struct SmallCase {
  std::vector<float> scores = {
      0.7f, 0.2f, 0.1f,  // [1,0,0]
      0.3f, 0.6f, 0.1f,  // [0,1,0]
      0.5f, 0.4f, 0.1f,  // [1,1,0]
      0.6f, 0.3f, 0.5f,  // [0,1,1]
      0.4f, 0.4f, 0.2f,  // [0,0,0]
  };
  std::vector<uint8_t> labels = {1, 0, 0, 0, 1, 0, 1, 1, 0, 0, 1, 1, 0, 0, 0};
};

TEST(EvalSubsets, SingleAndMultiLabelMap) {
  SmallCase s;
  const auto m = evaluate({s.scores.data(), s.labels.data(), 5, 3});
  // Single rows 0, 1: class 0 [.7+, .3-] -> 1; class 1 [.2-, .6+] -> 1; class 2 has no positive
  // -> 0, and it stays in the mean as in the reference (sklearn 1.5 gives 0, np.nanmean keeps it).
  EXPECT_NEAR(m.map_single, 2.0 / 3.0, 1e-12);
  // Multi rows 2, 3: class 0 [.5+, .6-] -> 1/2; class 1 both positive -> 1; class 2 [.1-, .5+] -> 1.
  EXPECT_NEAR(m.map_multi, 2.5 / 3.0, 1e-12);
  // Full set: mean of the per-class APs, the label-less row 4 being a negative everywhere.
  const auto ap = average_precision_per_class(s.scores.data(), s.labels.data(), 5, 3);
  ASSERT_EQ(m.ap, ap);
  EXPECT_NEAR(m.map, (ap[0] + ap[1] + ap[2]) / 3.0, 1e-15);
  EXPECT_FALSE(m.map_head.has_value());
  EXPECT_FALSE(m.centroid_ratio.has_value());
}

TEST(EvalSubsets, GroupMapIsMeanOfGroupAps) {
  SmallCase s;
  ClassGroups g{{1}, {}, {0, 2}};
  EvalInputs in{s.scores.data(), s.labels.data(), 5, 3};
  in.groups = &g;
  const auto m = evaluate(in);
  ASSERT_TRUE(m.map_head && m.map_tail);
  EXPECT_DOUBLE_EQ(*m.map_head, m.ap[1]);
  EXPECT_FALSE(m.map_middle.has_value());  // empty group
  EXPECT_NEAR(*m.map_tail, (m.ap[0] + m.ap[2]) / 2.0, 1e-15);
  ClassGroups bad{{3}, {}, {}};
  in.groups = &bad;
  EXPECT_THROW(evaluate(in), Error);
}

TEST(EvalSubsets, EmptySubsetsGiveZero) {
  std::vector<float> scores = {0.9f, 0.1f, 0.2f, 0.8f};
  std::vector<uint8_t> labels = {1, 0, 0, 1};  // only single-label rows
  const auto m = evaluate({scores.data(), labels.data(), 2, 2});
  EXPECT_DOUBLE_EQ(m.map_single, 1.0);
  EXPECT_EQ(m.map_multi, 0.0);
}

// --- centroid-distance ratio ----------------------------------------------------------------

// 4 unit vectors in 2-D, 3 classes (class 2 has no positive image: no centroid, no pair).
//   r0 (1,0) [1,0,0]   r1 (0,1) [1,1,0]   r2 (-1,0) [0,1,0]   r3 (0,-1) [1,0,0]
// c0 = (1/3, 0): positives r0 2/3, r1 sqrt(10)/3, r3 sqrt(10)/3; negative r2 4/3.
// c1 = (-1/2, 1/2): positives r1, r2 sqrt(1/2); negatives r0, r3 sqrt(5/2).
struct CentroidCase {
  std::vector<float> emb = {1, 0, 0, 1, -1, 0, 0, -1};
  std::vector<uint8_t> labels = {1, 0, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0};
};

TEST(EvalCentroid, PooledOverPairsHandComputed) {
  CentroidCase s;
  ClassGroups g{{0}, {}, {1, 2}};
  const auto r = centroid_distance_ratios(s.emb.data(), s.labels.data(), 4, 3, 2, &g);
  const double pd = (2.0 / 3.0 + 2.0 * std::sqrt(10.0) / 3.0 + 2.0 * std::sqrt(0.5)) / 5.0;
  const double nd = (4.0 / 3.0 + 2.0 * std::sqrt(2.5)) / 3.0;
  // The reference adds pairwise_distance's eps = 1e-6 to each difference: well inside 1e-5.
  ASSERT_TRUE(r.all.has_value());
  EXPECT_NEAR(r.all->pd, pd, 1e-5);
  EXPECT_NEAR(r.all->nd, nd, 1e-5);
  EXPECT_NEAR(r.all->ratio, pd / nd, 1e-5);
  EXPECT_EQ(r.all->positive_pairs, 5);
  EXPECT_EQ(r.all->negative_pairs, 3);
  // Pooled over pairs (the reference), which differs from a mean of per-class ratios here.
  const double per_class = ((2.0 / 3.0 + 2.0 * std::sqrt(10.0) / 3.0) / 3.0 / (4.0 / 3.0) +
                            std::sqrt(0.5) / std::sqrt(2.5)) / 2.0;
  EXPECT_GT(std::abs(r.all->ratio - per_class), 1e-3);
  ASSERT_TRUE(r.head && r.tail);
  EXPECT_NEAR(r.head->ratio, (2.0 / 3.0 + 2.0 * std::sqrt(10.0) / 3.0) / 3.0 / (4.0 / 3.0), 1e-5);
  EXPECT_NEAR(r.tail->ratio, std::sqrt(0.2), 1e-5);
  EXPECT_FALSE(r.middle.has_value());

  // Through evaluate.
  std::vector<float> scores(12, 0.5f);
  EvalInputs in{scores.data(), s.labels.data(), 4, 3, s.emb.data(), 2, &g};
  const auto m = evaluate(in);
  ASSERT_TRUE(m.centroid_ratio && m.centroid_ratio_head && m.centroid_ratio_tail);
  EXPECT_DOUBLE_EQ(*m.centroid_ratio, r.all->ratio);
  EXPECT_DOUBLE_EQ(*m.centroid_ratio_tail, r.tail->ratio);
  EXPECT_FALSE(m.centroid_ratio_middle.has_value());
}

TEST(EvalCentroid, WithoutGroupsOnlyOverall) {
  CentroidCase s;
  const auto r = centroid_distance_ratios(s.emb.data(), s.labels.data(), 4, 3, 2);
  EXPECT_TRUE(r.all.has_value());
  EXPECT_FALSE(r.head || r.middle || r.tail);
  EXPECT_THROW(centroid_distance_ratios(s.emb.data(), s.labels.data(), 4, 3, 0), Error);
}

// --- JSON -----------------------------------------------------------------------------------

TEST(EvalJson, KeysAndNulls) {
  SmallCase s;
  auto j = to_json(evaluate({s.scores.data(), s.labels.data(), 5, 3}));
  for (const char* key : {"map", "map_head", "map_middle", "map_tail", "ap", "precision", "recall", "f1",
                          "map_single", "map_multi", "centroid_ratio", "centroid_ratio_head",
                          "centroid_ratio_middle", "centroid_ratio_tail"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  EXPECT_EQ(j.size(), 14u);
  EXPECT_EQ(j["f1"].size(), 3u);
  EXPECT_TRUE(j["map"].is_number_float());
  EXPECT_TRUE(j["map_head"].is_null());
  EXPECT_TRUE(j["centroid_ratio"].is_null());
  ASSERT_TRUE(j["ap"].is_array());
  EXPECT_EQ(j["ap"].size(), 3u);
  EXPECT_NEAR(j["map_single"].get<double>(), 2.0 / 3.0, 1e-12);  // a fraction, not percent

  EvalMetrics m;
  m.map_head = 0.25;
  m.centroid_ratio_tail = 0.5;
  j = to_json(m);
  EXPECT_DOUBLE_EQ(j["map_head"].get<double>(), 0.25);
  EXPECT_DOUBLE_EQ(j["centroid_ratio_tail"].get<double>(), 0.5);
  EXPECT_TRUE(j["map_middle"].is_null());
}

// --- precision / recall / F1 at a threshold (Figure 6) ----------------------------------------

// Against scikit-learn: precision_recall_fscore_support(y, scores >= 0.5, average=None,
// zero_division=0) on these 4 x 3 cases gives P = [0.5, 1, 0], R = [1, 1/3, 0],
// F1 = [2/3, 1/2, 0] (class 2 is never predicted and has no positive).
TEST(EvalPrecisionRecall, MatchesScikitLearnAtThreshold) {
  const std::vector<float> scores = {0.6f, 0.3f, 0.1f,   // predicts 0 (true: 0)
                                     0.7f, 0.2f, 0.1f,   // predicts 0 (true: 1)
                                     0.2f, 0.5f, 0.3f,   // predicts 1 (true: 1), 0.5 counts
                                     0.4f, 0.4f, 0.2f};  // predicts none (true: 1)
  const std::vector<uint8_t> labels = {1, 0, 0,
                                       0, 1, 0,
                                       0, 1, 0,
                                       0, 1, 0};
  const auto r = precision_recall_f1(scores.data(), labels.data(), 4, 3, 0.5);
  const std::vector<double> p = {0.5, 1.0, 0.0}, rc = {1.0, 1.0 / 3.0, 0.0};
  for (int k = 0; k < 3; ++k) {
    EXPECT_DOUBLE_EQ(r.precision[k], p[k]) << k;
    EXPECT_DOUBLE_EQ(r.recall[k], rc[k]) << k;
    const double f1 = p[k] + rc[k] > 0 ? 2 * p[k] * rc[k] / (p[k] + rc[k]) : 0.0;
    EXPECT_DOUBLE_EQ(r.f1[k], f1) << k;
  }
  // A lower threshold predicts more: class 0 gets row 3 too (a false positive).
  const auto low = precision_recall_f1(scores.data(), labels.data(), 4, 3, 0.35);
  EXPECT_DOUBLE_EQ(low.precision[0], 1.0 / 3.0);
  EXPECT_DOUBLE_EQ(low.recall[1], 2.0 / 3.0);
  EXPECT_THROW(precision_recall_f1(scores.data(), nullptr, 4, 3), Error);
}

TEST(EvalPrecisionRecall, EvaluateRecordsThem) {
  SmallCase s;
  EvalInputs in{s.scores.data(), s.labels.data(), 5, 3};
  const auto m = evaluate(in);
  const auto direct = precision_recall_f1(s.scores.data(), s.labels.data(), 5, 3, 0.5);
  EXPECT_EQ(m.at_threshold.precision, direct.precision);
  EXPECT_EQ(m.at_threshold.recall, direct.recall);
  EXPECT_EQ(m.at_threshold.f1, direct.f1);
}

// --- speed (printed, not asserted) ------------------------------------------------------------

TEST(EvalTiming, CocoSizedEvaluation) {
  const int64_t n = 5000, c = 80, d = 512;
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> uni(0.0f, 1.0f);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> scores(n * c), emb(n * d);
  std::vector<uint8_t> labels(n * c);
  for (int64_t k = 0; k < c; ++k) {
    const float prevalence = 0.002f + 0.1f * static_cast<float>(k) / c;
    for (int64_t i = 0; i < n; ++i) labels[i * c + k] = uni(rng) < prevalence ? 1 : 0;
  }
  for (int64_t i = 0; i < n * c; ++i) scores[i] = uni(rng) + 0.5f * labels[i];
  for (int64_t i = 0; i < n; ++i) {
    double norm = 0;
    for (int64_t j = 0; j < d; ++j) {
      emb[i * d + j] = normal(rng);
      norm += emb[i * d + j] * emb[i * d + j];
    }
    for (int64_t j = 0; j < d; ++j) emb[i * d + j] /= static_cast<float>(std::sqrt(norm));
  }
  using clock = std::chrono::steady_clock;
  auto t0 = clock::now();
  const auto ap = average_precision_per_class(scores.data(), labels.data(), n, c);
  auto t1 = clock::now();
  const auto groups = group_classes(std::vector<int64_t>(c, 50));
  EvalInputs in{scores.data(), labels.data(), n, c};
  in.groups = &groups;
  const auto no_emb = evaluate(in);
  auto t2 = clock::now();
  in.embeddings = emb.data();
  in.d = d;
  const auto m = evaluate(in);
  auto t3 = clock::now();
  auto ms = [](auto a, auto b) { return std::chrono::duration<double, std::milli>(b - a).count(); };
  std::cout << "[timing] 5000 x 80: per-class AP " << ms(t0, t1) << " ms; evaluate without "
            << "embeddings " << ms(t1, t2) << " ms; with 512-d embeddings " << ms(t2, t3)
            << " ms\n";
  EXPECT_EQ(ap.size(), static_cast<size_t>(c));
  EXPECT_GT(m.map, 0.0);
  EXPECT_LE(m.map, 1.0);
  EXPECT_EQ(no_emb.map, m.map);
  ASSERT_TRUE(m.centroid_ratio.has_value());
  EXPECT_LT(*m.centroid_ratio, 1.0);  // random unit vectors: positives sit nearer their centroid
}

}  // namespace
}  // namespace lmsweep
