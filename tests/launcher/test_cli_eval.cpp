// `lmsweep eval` as a user runs it: outputs against PyTorch on the shared tiny ViT, the metrics
// JSON, and bad input (one clear line on stderr, exit status 1, no crash).
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "launcher/lmsweep_process.h"
#include "support/shared_data.h"

namespace fs = std::filesystem;
using nlohmann::json;
using namespace lmsweep::testing;

namespace {

struct Csv {
  std::vector<std::string> header;
  std::vector<std::string> images;
  std::vector<std::vector<double>> values;
};

Csv read_csv(const fs::path& path) {
  Csv csv;
  std::istringstream in(read_text_file(path));
  std::string line;
  auto split = [](const std::string& l) {
    std::vector<std::string> cells;
    std::stringstream ss(l);
    for (std::string cell; std::getline(ss, cell, ',');) cells.push_back(cell);
    return cells;
  };
  if (std::getline(in, line)) csv.header = split(line);
  while (std::getline(in, line)) {
    auto cells = split(line);
    if (cells.empty()) continue;
    csv.images.push_back(cells[0]);
    std::vector<double> row;
    for (size_t k = 1; k < cells.size(); ++k) row.push_back(std::stod(cells[k]));
    csv.values.push_back(row);
  }
  return csv;
}

double mean_of(const std::vector<double>& ap, const std::vector<int>& classes) {
  double s = 0;
  for (int c : classes) s += ap[static_cast<size_t>(c)];
  return s / static_cast<double>(classes.size());
}

// The VOC test setting on the shared tiny ViT: 20 classes, the six reference images.
class LauncherEvalTinyVit : public ::testing::Test {
 protected:
  void SetUp() override {
    LMSWEEP_REQUIRE_SHARED("testdata/clip_vit_tiny/reference.json");
    LMSWEEP_REQUIRE_SHARED("assets/bpe_simple_vocab_16e6.txt.gz");
    dir_ = temp_dir("launcher_eval_tiny_vit");
    model_dir_ = shared_file("testdata/clip_vit_tiny");
    reference_ = json::parse(read_text_file(model_dir_ / "reference.json"));
    const auto names = reference_["class_names"].get<std::vector<std::string>>();
    ASSERT_EQ(names.size(), 20u);
    // Written last index first: the index, not the line, makes the column.
    std::string labels;
    for (int c = 19; c >= 0; --c) labels += names[static_cast<size_t>(c)] + " " + std::to_string(c) + "\n";
    write_text_file(dir_ / "labels.txt", labels);
    // Not in file order: the CSV must follow the split. Single- and multi-label images.
    order_ = {3, 0, 5, 1, 4, 2};
    const std::vector<std::string> image_labels = {"14 4", "0", "1 14 19", "6", "14", "11 7 "};
    std::string test;
    for (size_t i = 0; i < order_.size(); ++i)
      test += "images/img0" + std::to_string(order_[i]) + ".png " + image_labels[i] + "\n";
    write_text_file(dir_ / "test.txt", test);
    // Training counts only (the images need not exist): classes 0 and 14 head (>= 100),
    // 1..6 middle (20..99), the others tail.
    std::string train;
    int n = 0;
    auto add = [&](int c, int count) {
      for (int i = 0; i < count; ++i) train += "train/" + std::to_string(n++) + ".jpg " + std::to_string(c) + "\n";
    };
    add(0, 120);
    add(14, 150);
    for (int c = 1; c <= 6; ++c) add(c, 20 + 10 * c);
    for (int c = 7; c < 20; ++c)
      if (c != 14) add(c, 3 + c % 5);
    write_text_file(dir_ / "train.txt", train);
    head_ = {0, 14};
    middle_ = {1, 2, 3, 4, 5, 6};
    for (int c = 7; c < 20; ++c)
      if (c != 14) tail_.push_back(c);
  }

  std::vector<std::string> eval_args(bool with_train) const {
    std::vector<std::string> a = {"eval", "--weights", (model_dir_ / "model.pt").string(), "--bpe",
                                  shared_file("assets/bpe_simple_vocab_16e6.txt.gz").string(), "--data-root",
                                  model_dir_.string(), "--test", (dir_ / "test.txt").string(), "--labels",
                                  (dir_ / "labels.txt").string(), "--normalize", "clip", "--threads", "1",
                                  "--scores-out", (dir_ / "scores.csv").string(), "--metrics-out",
                                  (dir_ / "metrics.json").string()};
    if (with_train) a.insert(a.end(), {"--train", (dir_ / "train.txt").string()});
    return a;
  }

  void TearDown() override { remove_unless_failed(dir_); }

  fs::path dir_, model_dir_;
  json reference_;
  std::vector<int> order_, head_, middle_, tail_;
};

TEST_F(LauncherEvalTinyVit, ScoresMatchPyTorchAndMetricsJsonIsComplete) {
  const auto r = run_lmsweep(eval_args(true));
  ASSERT_TRUE(Succeeds(r));
  EXPECT_TRUE(r.err.empty()) << r;
  // The Table-1 row is printed.
  EXPECT_NE(r.out.find("mAP"), std::string::npos) << r;

  const Csv csv = read_csv(dir_ / "scores.csv");
  ASSERT_EQ(csv.header.size(), 21u);
  EXPECT_EQ(csv.header[0], "image");
  for (int k = 0; k < 20; ++k) EXPECT_EQ(csv.header[static_cast<size_t>(k + 1)], std::to_string(k));
  ASSERT_EQ(csv.images.size(), order_.size());

  const json torchscript =
      json::parse(read_text_file(fs::path(LMSWEEP_MODEL_TEST_DATA_DIR) / "tiny_vit_torchscript_outputs.json"));
  const auto& ts_logits = torchscript["logits_per_image"];
  const auto& ref_logits = reference_["logits_per_image"];
  double max_ts = 0, max_ref = 0;
  for (size_t i = 0; i < order_.size(); ++i) {
    const size_t img = static_cast<size_t>(order_[i]);
    EXPECT_EQ(csv.images[i], "images/img0" + std::to_string(img) + ".png");
    ASSERT_EQ(csv.values[i].size(), 20u);
    for (size_t k = 0; k < 20; ++k) {
      max_ts = std::max(max_ts, std::abs(csv.values[i][k] - ts_logits[img][k].get<double>()));
      max_ref = std::max(max_ref, std::abs(csv.values[i][k] - ref_logits[img][k].get<double>()));
    }
  }
  // PyTorch's execution of the stored (fp16) weights: the implementation itself.
  EXPECT_LT(max_ts, 1e-4);
  // reference.json predates the fp16 rounding of the weights: only to that precision.
  EXPECT_LT(max_ref, 1e-2);

  const json m = json::parse(read_text_file(dir_ / "metrics.json"));
  for (const char* key : {"map", "map_head", "map_middle", "map_tail", "map_single", "map_multi", "centroid_ratio"}) {
    ASSERT_TRUE(m.contains(key)) << key << " missing in " << m.dump();
    ASSERT_TRUE(m[key].is_number()) << key << " is not a number in " << m.dump();
  }
  ASSERT_TRUE(m["ap"].is_array());
  const auto ap = m["ap"].get<std::vector<double>>();
  ASSERT_EQ(ap.size(), 20u);
  for (double v : ap) {
    EXPECT_GE(v, 0.0);
    EXPECT_LE(v, 1.0);
  }
  // Fractions, not percent; groups from the training counts written above.
  std::vector<int> all(20);
  std::iota(all.begin(), all.end(), 0);
  EXPECT_NEAR(m["map"].get<double>(), mean_of(ap, all), 1e-9);
  EXPECT_NEAR(m["map_head"].get<double>(), mean_of(ap, head_), 1e-9);
  EXPECT_NEAR(m["map_middle"].get<double>(), mean_of(ap, middle_), 1e-9);
  EXPECT_NEAR(m["map_tail"].get<double>(), mean_of(ap, tail_), 1e-9);
  // A class without a positive test image has AP 0 (scikit-learn >= 1.1).
  EXPECT_EQ(ap[2], 0.0);
  EXPECT_GT(m["centroid_ratio"].get<double>(), 0.0);
}

TEST_F(LauncherEvalTinyVit, WithoutTrainSplitTheGroupMapsAreNull) {
  const auto r = run_lmsweep(eval_args(false));
  ASSERT_TRUE(Succeeds(r));
  const json m = json::parse(read_text_file(dir_ / "metrics.json"));
  for (const char* key : {"map_head", "map_middle", "map_tail"})
    EXPECT_TRUE(!m.contains(key) || m[key].is_null()) << key << " = " << m[key].dump();
  ASSERT_TRUE(m["map"].is_number());
  ASSERT_EQ(m["ap"].size(), 20u);
  const std::string scores = read_text_file(dir_ / "scores.csv");

  // --train only adds the groups: the same scores, AP and mAP.
  ASSERT_TRUE(Succeeds(run_lmsweep(eval_args(true))));
  const json with_train = json::parse(read_text_file(dir_ / "metrics.json"));
  EXPECT_TRUE(with_train["map_head"].is_number());
  EXPECT_EQ(with_train["map"], m["map"]);
  EXPECT_EQ(with_train["ap"], m["ap"]);
  EXPECT_EQ(read_text_file(dir_ / "scores.csv"), scores);
}

// Bad input on the synthetic data with a random tiny model (no ../shared needed).
class LauncherEvalBadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = temp_dir("launcher_eval_bad");
    data_ = synth_data(dir_ / "synth", 20, 10);
  }
  std::vector<std::string> args(const fs::path& test, const fs::path& labels,
                                const std::vector<std::string>& extra = {}) const {
    std::vector<std::string> a = {"eval", "--data-root", data_.root.string(), "--test", test.string(),
                                  "--labels", labels.string(), "--threads", "1"};
    bool weights = false;
    for (const auto& e : extra) weights = weights || e == "--weights";
    if (!weights) a.insert(a.end(), {"--arch", kTinyArch});
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  void TearDown() override { remove_unless_failed(dir_); }

  fs::path dir_;
  SynthPaths data_;
};

TEST_F(LauncherEvalBadInput, BaselineRunsWithTheSameArguments) {
  // The failures below come from the one thing each changes.
  const auto r = run_lmsweep(args(data_.test, data_.labels, {"--metrics-out", (dir_ / "m.json").string()}));
  ASSERT_TRUE(Succeeds(r));
  EXPECT_TRUE(fs::exists(dir_ / "m.json"));
}

// A full disk (/dev/full: every write fails with ENOSPC) is an error, not an empty file.
TEST_F(LauncherEvalBadInput, FullDiskForScoresOrMetrics) {
  if (!fs::exists("/dev/full")) GTEST_SKIP() << "no /dev/full on this system";
  for (const std::string flag : {"--scores-out", "--metrics-out"})
    EXPECT_TRUE(FailsWithOneLine(run_lmsweep(args(data_.test, data_.labels, {flag, "/dev/full"})),
                                 "lmsweep eval: error:", {flag, "/dev/full", "disk full"}));
}

TEST_F(LauncherEvalBadInput, MissingImage) {
  write_text_file(dir_ / "test.txt", "test/000000.png 0\nnowhere/missing_image.png 1\n");
  EXPECT_TRUE(FailsWithOneLine(run_lmsweep(args(dir_ / "test.txt", data_.labels)), "lmsweep eval: error:",
                               {"nowhere/missing_image.png"}));
}

TEST_F(LauncherEvalBadInput, CorruptImage) {
  std::string garbage;
  for (int i = 0; i < 512; ++i) garbage += static_cast<char>((i * 131 + 7) % 256);
  write_text_file(data_.root / "corrupt_image.png", garbage);
  write_text_file(dir_ / "test.txt", "test/000000.png 0\ncorrupt_image.png 1\n");
  EXPECT_TRUE(FailsWithOneLine(run_lmsweep(args(dir_ / "test.txt", data_.labels)), "lmsweep eval: error:",
                               {"corrupt_image.png"}));
}

TEST_F(LauncherEvalBadInput, TruncatedPng) {
  const std::string png = read_text_file(data_.root / "test" / "000001.png");
  ASSERT_GT(png.size(), 100u);
  write_text_file(data_.root / "truncated.png", png.substr(0, png.size() / 2));
  write_text_file(dir_ / "test.txt", "test/000000.png 0\ntruncated.png 1\n");
  EXPECT_TRUE(FailsWithOneLine(run_lmsweep(args(dir_ / "test.txt", data_.labels)), "lmsweep eval: error:",
                               {"truncated.png"}));
}

TEST_F(LauncherEvalBadInput, PngWithDamagedData) {
  std::string png = read_text_file(data_.root / "test" / "000001.png");
  const size_t idat = png.find("IDAT");
  ASSERT_NE(idat, std::string::npos);
  ASSERT_GT(png.size(), idat + 40);
  for (size_t i = idat + 16; i < idat + 24; ++i) png[i] = static_cast<char>(png[i] ^ 0x5A);
  write_text_file(data_.root / "damaged.png", png);
  write_text_file(dir_ / "test.txt", "test/000000.png 0\ndamaged.png 1\n");
  EXPECT_TRUE(FailsWithOneLine(run_lmsweep(args(dir_ / "test.txt", data_.labels)), "lmsweep eval: error:",
                               {"damaged.png"}));
}

TEST_F(LauncherEvalBadInput, JpegDecodesAndATruncatedOneFails) {
  const cv::Mat image = cv::imread((data_.root / "test" / "000001.png").string(), cv::IMREAD_COLOR);
  ASSERT_FALSE(image.empty());
  ASSERT_TRUE(cv::imwrite((data_.root / "good.jpg").string(), image));
  write_text_file(dir_ / "test_jpg.txt", "test/000000.png 0\ngood.jpg 1\n");
  EXPECT_TRUE(Succeeds(run_lmsweep(args(dir_ / "test_jpg.txt", data_.labels))));

  const std::string jpg = read_text_file(data_.root / "good.jpg");
  write_text_file(data_.root / "truncated.jpg", jpg.substr(0, jpg.size() * 2 / 3));
  write_text_file(dir_ / "test.txt", "test/000000.png 0\ntruncated.jpg 1\n");
  EXPECT_TRUE(FailsWithOneLine(run_lmsweep(args(dir_ / "test.txt", data_.labels)), "lmsweep eval: error:",
                               {"truncated.jpg"}));
}

TEST_F(LauncherEvalBadInput, LabelIndexNotBelowClassCount) {
  // The synthetic labels file has 10 classes: 10 is out of range; line 2 is at fault.
  write_text_file(dir_ / "bad_label_split.txt", "test/000000.png 0\ntest/000001.png 3 10\n");
  EXPECT_TRUE(FailsWithOneLine(run_lmsweep(args(dir_ / "bad_label_split.txt", data_.labels)),
                               "lmsweep eval: error:", {"bad_label_split.txt:2", "10"}));
}

TEST_F(LauncherEvalBadInput, LabelsFileWithDuplicateIndex) {
  std::string labels = read_text_file(data_.labels);
  labels += "purple blob 4\n";
  write_text_file(dir_ / "dup_labels.txt", labels);
  EXPECT_TRUE(FailsWithOneLine(run_lmsweep(args(data_.test, dir_ / "dup_labels.txt")), "lmsweep eval: error:",
                               {"dup_labels.txt:11", "4"}));
}

TEST_F(LauncherEvalBadInput, CheckpointThatIsNotOne) {
  write_text_file(dir_ / "not_a_checkpoint.pt", "this is a text file, not a CLIP checkpoint\n");
  EXPECT_TRUE(FailsWithOneLine(
      run_lmsweep(args(data_.test, data_.labels, {"--weights", (dir_ / "not_a_checkpoint.pt").string()})),
      "lmsweep eval: error:", {"not_a_checkpoint.pt"}));
  EXPECT_TRUE(FailsWithOneLine(
      run_lmsweep(args(data_.test, data_.labels, {"--weights", (dir_ / "no_such_file.pt").string()})),
      "lmsweep eval: error:", {"no_such_file.pt"}));
}

TEST_F(LauncherEvalBadInput, OwnCheckpointLoadsAndATruncatedCopyFailsCleanly) {
  // A checkpoint written by `lmsweep train` (random weights, one epoch).
  const auto ckpt = dir_ / "ckpt";
  const auto t = run_lmsweep({"train", "--arch", kTinyArch, "--data-root", data_.root.string(), "--train",
                              data_.train.string(), "--test", data_.test.string(), "--labels", data_.labels.string(),
                              "--epochs", "1", "--batch-size", "8", "--lr", "1e-4", "--label-smoothing", "0",
                              "--threads", "1", "--db",
                              (dir_ / "train.db").string(), "--checkpoint-dir", ckpt.string(), "--metrics-out",
                              (dir_ / "train.jsonl").string()});
  ASSERT_TRUE(Succeeds(t));
  ASSERT_TRUE(fs::exists(ckpt / "last.pt"));

  const auto r = run_lmsweep(args(data_.test, data_.labels,
                                  {"--weights", (ckpt / "last.pt").string(), "--train", data_.train.string(),
                                   "--metrics-out", (dir_ / "eval.json").string()}));
  ASSERT_TRUE(Succeeds(r));
  // The saved weights score the test split as the trainer's own evaluation did after epoch 1.
  const json trained = json::parse(read_text_file(dir_ / "train.jsonl"));
  const json evaluated = json::parse(read_text_file(dir_ / "eval.json"));
  EXPECT_NEAR(evaluated["map"].get<double>(), trained["map"].get<double>(), 1e-6);

  const std::string bytes = read_text_file(ckpt / "last.pt");
  write_text_file(dir_ / "truncated_ckpt.pt", bytes.substr(0, bytes.size() / 2));
  EXPECT_TRUE(FailsWithOneLine(
      run_lmsweep(args(data_.test, data_.labels, {"--weights", (dir_ / "truncated_ckpt.pt").string()})),
      "lmsweep eval: error:", {"truncated_ckpt.pt"}));
}

TEST_F(LauncherEvalBadInput, OpenAICheckpointWithoutItsVocabulary) {
  LMSWEEP_REQUIRE_SHARED("testdata/clip_vit_tiny/model.pt");
  const auto weights = lmsweep::testing::shared_file("testdata/clip_vit_tiny/model.pt").string();
  EXPECT_TRUE(FailsWithOneLine(run_lmsweep(args(data_.test, data_.labels, {"--weights", weights})),
                               "lmsweep eval: error:", {"--bpe", "49408"}));
}

TEST_F(LauncherEvalBadInput, MissingVocabularyFile) {
  EXPECT_TRUE(FailsWithOneLine(
      run_lmsweep(args(data_.test, data_.labels, {"--bpe", "/nonexistent/bpe_simple_vocab_16e6.txt.gz"})),
      "lmsweep eval: error:", {"/nonexistent/bpe_simple_vocab_16e6.txt.gz"}));
}

TEST_F(LauncherEvalBadInput, MissingRequiredOptionAndUnknownOption) {
  EXPECT_TRUE(FailsWithOneLine(run_lmsweep({"eval", "--arch", kTinyArch, "--test", data_.test.string(), "--labels",
                                            data_.labels.string()}),
                               "lmsweep eval: error:", {"data-root"}));
  EXPECT_TRUE(FailsWithOneLine(run_lmsweep(args(data_.test, data_.labels, {"--no-such-option", "1"})),
                               "lmsweep eval: error:", {"no-such-option"}));
}

}  // namespace
