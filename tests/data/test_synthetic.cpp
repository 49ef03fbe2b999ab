// The built-in synthetic long-tailed dataset.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <gtest/gtest.h>

#include "common/error.h"
#include "data/dataset.h"
#include "data/image.h"
#include "data/synthetic.h"
#include "support/shared_data.h"

namespace lmsweep {
namespace {

namespace fs = std::filesystem;
using testing::read_text_file;
using testing::temp_dir;

std::map<std::string, std::string> all_files(const fs::path& root) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (e.is_regular_file()) files[fs::relative(e.path(), root).string()] = read_text_file(e.path());
  }
  return files;
}

TEST(DataSynthetic, SameSeedGivesByteIdenticalFiles) {
  const auto a = temp_dir("synth_a"), b = temp_dir("synth_b"), c = temp_dir("synth_c");
  SyntheticOptions o;
  o.seed = 7;
  o.out_dir = a.string();
  write_synthetic_dataset(o);
  o.out_dir = b.string();
  write_synthetic_dataset(o);
  o.out_dir = c.string();
  o.seed = 8;
  write_synthetic_dataset(o);
  const auto fa = all_files(a), fb = all_files(b), fc = all_files(c);
  EXPECT_EQ(fa.size(), 4u + 400u + 200u);  // labels, train, test, the marker, the images
  EXPECT_TRUE(fa == fb);
  EXPECT_FALSE(fa == fc);
  EXPECT_EQ(fa.at("labels.txt"), fc.at("labels.txt"));  // same classes, other images/labels
  EXPECT_NE(fa.at("train.txt"), fc.at("train.txt"));
  for (const auto& d : {a, b, c}) fs::remove_all(d);
}

TEST(DataSynthetic, NeverOverwritesTheUsersOwnSplitFiles) {
  const auto dir = temp_dir("synth_own");
  std::ofstream(dir / "labels.txt") << "cat 0\ndog 1\n";
  SyntheticOptions o;
  o.out_dir = dir.string();
  try {
    write_synthetic_dataset(o);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("labels.txt"), std::string::npos) << e.what();
  }
  EXPECT_EQ(read_text_file(dir / "labels.txt"), "cat 0\ndog 1\n");
  // Its own folder it may write again.
  fs::remove(dir / "labels.txt");
  write_synthetic_dataset(o);
  EXPECT_NO_THROW(write_synthetic_dataset(o));
  fs::remove_all(dir);
}

TEST(DataSynthetic, LongTailedMultiLabelAndReadable) {
  for (uint64_t seed : {0ull, 1ull, 12345ull}) {
    const auto dir = temp_dir("synth_" + std::to_string(seed));
    SyntheticOptions o;
    o.out_dir = dir.string();
    o.seed = seed;
    const SyntheticDataset ds = write_synthetic_dataset(o);
    const LabelNames names = read_label_names(ds.labels_file);
    ASSERT_EQ(names.names.size(), 10u);
    EXPECT_EQ(names.names[0], "red square");
    EXPECT_EQ(names.names[3], "yellow horizontal stripes");
    EXPECT_EQ(std::set<std::string>(names.names.begin(), names.names.end()).size(), 10u);
    const Split train = read_split(ds.train_split, 10);
    const Split test = read_split(ds.test_split, 10);
    ASSERT_EQ(train.entries.size(), 400u);
    ASSERT_EQ(test.entries.size(), 200u);

    const auto counts = class_counts(train, 10);
    int head = 0, middle = 0, tail = 0;
    for (auto n : counts) {
      EXPECT_GE(n, 1) << "seed " << seed;  // every class has a training image
      (n >= 100 ? head : n >= 20 ? middle : tail)++;
    }
    EXPECT_GE(head, 1) << "seed " << seed;
    EXPECT_GE(middle, 1) << "seed " << seed;
    EXPECT_GE(tail, 1) << "seed " << seed;
    EXPECT_TRUE(std::is_sorted(counts.rbegin(), counts.rend())) << "class 0 is the most frequent";
    EXPECT_GE(static_cast<double>(counts[0]) / static_cast<double>(counts[9]), 10.0);

    const auto test_counts = class_counts(test, 10);
    for (auto n : test_counts) EXPECT_GE(n, 20) << "balanced test split";

    for (const Split* s : {&train, &test}) {
      std::map<size_t, int> per_size;
      for (const auto& e : s->entries) {
        EXPECT_GE(e.labels.size(), 1u);
        EXPECT_LE(e.labels.size(), 3u);
        per_size[e.labels.size()]++;
      }
      const double n = static_cast<double>(s->entries.size());
      EXPECT_GT(per_size[1] / n, 0.3);
      EXPECT_GT((per_size[1] + per_size[2]) / n, 0.75);  // mostly 1-2 labels
      EXPECT_GT(per_size[3], 0);
    }

    const ImageSet images = load_images(ds.data_root, train, 32, 2);
    EXPECT_EQ(images.count, 400);
    // Patterns are bright, background dark: every image has some bright pixels.
    for (int64_t i = 0; i < images.count; i += 37) {
      const auto* p = images.image(i);
      EXPECT_GT(*std::max_element(p, p + 32 * 32 * 3), 150) << i;
    }
    fs::remove_all(dir);
  }
}

TEST(DataSynthetic, OtherSizesAndBadOptions) {
  const auto dir = temp_dir("synth_opts");
  SyntheticOptions o;
  o.out_dir = dir.string();
  o.num_classes = 30;
  o.train_images = 300;
  o.test_images = 60;
  o.image_size = 48;
  const auto ds = write_synthetic_dataset(o);
  const auto names = read_label_names(ds.labels_file);
  EXPECT_EQ(std::set<std::string>(names.names.begin(), names.names.end()).size(), 30u);
  const auto counts = class_counts(read_split(ds.train_split, 30), 30);
  for (auto n : counts) EXPECT_GE(n, 1);
  EXPECT_EQ(decode_image((dir / "train" / "000000.png").string()).width, 48);

  SyntheticOptions bad;
  EXPECT_THROW(write_synthetic_dataset(bad), Error);  // no out_dir
  bad.out_dir = dir.string();
  bad.num_classes = 101;
  EXPECT_THROW(write_synthetic_dataset(bad), Error);
  bad.num_classes = 10;
  bad.train_images = 5;
  EXPECT_THROW(write_synthetic_dataset(bad), Error);
  bad.train_images = 400;
  bad.pareto_alpha = 0;
  EXPECT_THROW(write_synthetic_dataset(bad), Error);
  EXPECT_EQ(synthetic_class_name(99), synthetic_class_name(99));
  EXPECT_THROW(synthetic_class_name(100), Error);
}

}  // namespace
}  // namespace lmsweep
