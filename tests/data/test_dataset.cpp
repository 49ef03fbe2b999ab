// Split / labels files: the community files as shipped, and malformed inputs.
#include <filesystem>
#include <fstream>
#include <numeric>

#include <gtest/gtest.h>

#include "support/errors.h"
#include "common/error.h"
#include "data/dataset.h"
#include "support/shared_data.h"

namespace lmsweep {
namespace {

namespace fs = std::filesystem;
using testing::shared_file;
using testing::temp_dir;

std::string write_file(const fs::path& dir, const std::string& name, const std::string& text) {
  const auto path = dir / name;
  std::ofstream(path, std::ios::binary) << text;
  return path.string();
}

// Runs f, expects lmsweep::Error, returns its message.
using testing::error_of;

TEST(DataLabels, CrlfTrailingSpacesBlankLinesAndSpacesInNames) {
  const auto dir = temp_dir("labels_ok");
  const auto path = write_file(dir, "labels.txt",
                               "\xEF\xBB\xBF" "person 0\r\n\r\nbicycle 1 \r\n  \n"
                               "traffic light 2\ndining  table\t3");
  const LabelNames labels = read_label_names(path);
  EXPECT_EQ(labels.file, path);
  ASSERT_EQ(labels.names.size(), 4u);
  EXPECT_EQ(labels.names[0], "person");
  EXPECT_EQ(labels.names[1], "bicycle");
  EXPECT_EQ(labels.names[2], "traffic light");
  EXPECT_EQ(labels.names[3], "dining  table");  // inner spacing kept, as rsplit(" ", 1)
}

TEST(DataLabels, OutOfOrderIndicesAreMappedByIndex) {
  const auto dir = temp_dir("labels_order");
  const auto labels = read_label_names(write_file(dir, "l.txt", "cat 1\ndog 0\n"));
  ASSERT_EQ(labels.names.size(), 2u);
  EXPECT_EQ(labels.names[0], "dog");
  EXPECT_EQ(labels.names[1], "cat");
}

TEST(DataLabels, DuplicateGapAndBadIndexNameFileAndLine) {
  const auto dir = temp_dir("labels_bad");
  const auto dup = write_file(dir, "dup.txt", "a 0\nb 1\n\nc 1\n");
  std::string msg = error_of([&] { read_label_names(dup); });
  EXPECT_NE(msg.find(dup + ":4"), std::string::npos) << msg;
  EXPECT_NE(msg.find("twice"), std::string::npos) << msg;

  const auto gap = write_file(dir, "gap.txt", "a 0\nb 1\nc 3\n");
  msg = error_of([&] { read_label_names(gap); });
  EXPECT_NE(msg.find(gap + ":3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("gap"), std::string::npos) << msg;
  EXPECT_NE(msg.find("2 is missing"), std::string::npos) << msg;

  const auto bad = write_file(dir, "bad.txt", "a 0\nb x1\n");
  msg = error_of([&] { read_label_names(bad); });
  EXPECT_NE(msg.find(bad + ":2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'x1'"), std::string::npos) << msg;

  const auto neg = write_file(dir, "neg.txt", "a -1\n");
  msg = error_of([&] { read_label_names(neg); });
  EXPECT_NE(msg.find(neg + ":1"), std::string::npos) << msg;

  const auto noname = write_file(dir, "noname.txt", "a 0\n1\n");
  msg = error_of([&] { read_label_names(noname); });
  EXPECT_NE(msg.find(noname + ":2"), std::string::npos) << msg;

  const auto empty = write_file(dir, "empty.txt", "\n \n");
  EXPECT_THROW(read_label_names(empty), Error);
  msg = error_of([&] { read_label_names((dir / "missing.txt").string()); });
  EXPECT_NE(msg.find("missing.txt"), std::string::npos) << msg;
}

TEST(DataSplit, LabelsInFileOrderTrailingSpaceAndUnlabeledLines) {
  const auto dir = temp_dir("split_ok");
  const auto path = write_file(dir, "s.txt",
                               "a/1.jpg 14 4 19\nb/2.jpg 0 \n\nc/3.jpg\r\nd/4.jpg\t3\t2  \n");
  const Split split = read_split(path, 20);
  EXPECT_EQ(split.file, path);
  ASSERT_EQ(split.entries.size(), 4u);
  EXPECT_EQ(split.entries[0].path, "a/1.jpg");
  EXPECT_EQ(split.entries[0].labels, (std::vector<int>{14, 4, 19}));
  EXPECT_EQ(split.entries[0].line, 1);
  EXPECT_EQ(split.entries[1].labels, (std::vector<int>{0}));
  EXPECT_EQ(split.entries[2].path, "c/3.jpg");
  EXPECT_TRUE(split.entries[2].labels.empty());
  EXPECT_EQ(split.entries[2].line, 4);
  EXPECT_EQ(split.entries[3].labels, (std::vector<int>{3, 2}));

  const auto counts = class_counts(split, 20);
  EXPECT_EQ(counts[14], 1);
  EXPECT_EQ(counts[0], 1);
  EXPECT_EQ(counts[1], 0);
  EXPECT_EQ(std::accumulate(counts.begin(), counts.end(), int64_t{0}), 6);

  const auto mh = multi_hot(split, 20);
  ASSERT_EQ(mh.size(), 4u * 20u);
  EXPECT_EQ(mh[0 * 20 + 4], 1);
  EXPECT_EQ(mh[0 * 20 + 5], 0);
  EXPECT_EQ(mh[3 * 20 + 2], 1);
  EXPECT_EQ(std::accumulate(mh.begin() + 40, mh.begin() + 60, 0), 0);  // unlabeled row
  EXPECT_EQ(std::accumulate(mh.begin(), mh.end(), 0), 6);
}

TEST(DataSplit, BadLabelsNameFileLineAndValue) {
  const auto dir = temp_dir("split_bad");
  const auto big = write_file(dir, "big.txt", "a.jpg 1\nb.jpg 3 20\n");
  std::string msg = error_of([&] { read_split(big, 20); });
  EXPECT_NE(msg.find(big + ":2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("label 20"), std::string::npos) << msg;

  const auto neg = write_file(dir, "neg.txt", "a.jpg -1\n");
  msg = error_of([&] { read_split(neg, 20); });
  EXPECT_NE(msg.find(neg + ":1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("label -1"), std::string::npos) << msg;

  const auto word = write_file(dir, "word.txt", "a.jpg 1\n\nb.jpg 2 x 3\n");
  msg = error_of([&] { read_split(word, 20); });
  EXPECT_NE(msg.find(word + ":3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("'x'"), std::string::npos) << msg;

  const auto flt = write_file(dir, "flt.txt", "a.jpg 1.5\n");
  msg = error_of([&] { read_split(flt, 20); });
  EXPECT_NE(msg.find("'1.5'"), std::string::npos) << msg;

  const auto twice = write_file(dir, "twice.txt", "a.jpg 1 2 1\n");
  msg = error_of([&] { read_split(twice, 20); });
  EXPECT_NE(msg.find(twice + ":1"), std::string::npos) << msg;

  EXPECT_THROW(read_split(write_file(dir, "empty.txt", "\n\n"), 20), Error);
  EXPECT_THROW(read_split((dir / "missing.txt").string(), 20), Error);
  EXPECT_THROW(read_split(big, 0), Error);
}

TEST(DataShared, VocMltAsShipped) {
  LMSWEEP_REQUIRE_SHARED("datasets/voc_mlt/voc_labels.txt");
  const auto labels = read_label_names(shared_file("datasets/voc_mlt/voc_labels.txt").string());
  ASSERT_EQ(labels.names.size(), 20u);
  EXPECT_EQ(labels.names[0], "aeroplane");
  EXPECT_EQ(labels.names[1], "bicycle");  // the line with a trailing space
  EXPECT_EQ(labels.names[10], "diningtable");
  EXPECT_EQ(labels.names[19], "tvmonitor");
  const auto train = read_split(shared_file("datasets/voc_mlt/voc_lt_train.txt").string(), 20);
  const auto test = read_split(shared_file("datasets/voc_mlt/voc_lt_test.txt").string(), 20);
  EXPECT_EQ(train.entries.size(), 1142u);
  EXPECT_EQ(test.entries.size(), 4952u);
  EXPECT_EQ(train.entries[0].path, "VOCdevkit/VOC2012/JPEGImages/2008_000023.jpg");
  EXPECT_EQ(train.entries[0].labels, (std::vector<int>{14, 4, 19}));
  EXPECT_EQ(test.entries[0].path, "VOCdevkit/VOC2007/JPEGImages/000001.jpg");
  const std::vector<int64_t> expected = {6,   34, 8,  14, 154, 17, 249, 29, 479, 4,
                                         240, 48, 11, 20, 775, 100, 5, 82, 7,   64};
  EXPECT_EQ(class_counts(train, 20), expected);
  // Head / middle / tail from the counts match the reference class_split.json.
  std::vector<int> head, middle, tail;
  for (int c = 0; c < 20; ++c) {
    (expected[c] >= 100 ? head : expected[c] >= 20 ? middle : tail).push_back(c);
  }
  EXPECT_EQ(head, (std::vector<int>{4, 6, 8, 10, 14, 15}));
  EXPECT_EQ(middle, (std::vector<int>{1, 7, 11, 13, 17, 19}));
  EXPECT_EQ(tail, (std::vector<int>{0, 2, 3, 5, 9, 12, 16, 18}));
}

TEST(DataShared, CocoMltAsShipped) {
  LMSWEEP_REQUIRE_SHARED("datasets/coco_mlt/coco_labels.txt");
  const auto labels = read_label_names(shared_file("datasets/coco_mlt/coco_labels.txt").string());
  ASSERT_EQ(labels.names.size(), 80u);
  EXPECT_EQ(labels.names[0], "person");
  EXPECT_EQ(labels.names[9], "traffic light");
  EXPECT_EQ(labels.names[79], "toothbrush");
  const auto train = read_split(shared_file("datasets/coco_mlt/coco_lt_train.txt").string(), 80);
  const auto test = read_split(shared_file("datasets/coco_mlt/coco_lt_test.txt").string(), 80);
  EXPECT_EQ(train.entries.size(), 1909u);
  EXPECT_EQ(test.entries.size(), 5000u);
  EXPECT_EQ(train.entries[0].labels, (std::vector<int>{0, 62, 64, 66}));  // trailing space
  int unlabeled_test = 0, unlabeled_train = 0;
  for (const auto& e : test.entries) unlabeled_test += e.labels.empty();
  for (const auto& e : train.entries) unlabeled_train += e.labels.empty();
  EXPECT_EQ(unlabeled_test, 48);
  EXPECT_EQ(unlabeled_train, 0);
  const auto counts = class_counts(train, 80);
  int head = 0, middle = 0, tail = 0;
  for (auto n : counts) {
    EXPECT_GT(n, 0);
    (n >= 100 ? head : n >= 20 ? middle : tail)++;
  }
  EXPECT_EQ(head, 22);
  EXPECT_EQ(middle, 33);
  EXPECT_EQ(tail, 25);
}

}  // namespace
}  // namespace lmsweep
