#include "data/synthetic.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "common/error.h"
#include "data/image.h"

namespace lmsweep {
namespace fs = std::filesystem;
namespace {

// Own draws on top of mt19937_64 (whose output the standard fixes), so the dataset is the same
// with every standard library.
class Rng {
 public:
  explicit Rng(uint64_t seed) : gen_(seed) {}
  double uniform() { return static_cast<double>(gen_() >> 11) * 0x1.0p-53; }  // [0, 1)
  uint64_t below(uint64_t n) {                                                // [0, n), unbiased
    const uint64_t limit = std::numeric_limits<uint64_t>::max() -
                           std::numeric_limits<uint64_t>::max() % n;
    uint64_t v;
    do {
      v = gen_();
    } while (v >= limit);
    return v % n;
  }
  template <typename T>
  void shuffle(std::vector<T>& v) {  // Fisher-Yates
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
  }

 private:
  std::mt19937_64 gen_;
};

// splitmix64: independent per-image streams from (seed, split, index).
uint64_t mix_seed(uint64_t seed, uint64_t a, uint64_t b) {
  uint64_t z = seed ^ (a * 0x9E3779B97F4A7C15ULL) ^ (b * 0xD1B54A32D192ED03ULL);
  z += 0x9E3779B97F4A7C15ULL;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

constexpr int kColours = 10, kShapes = 10;
constexpr std::array<const char*, kColours> kColourNames = {
    "red", "green", "blue", "yellow", "magenta", "cyan", "orange", "purple", "white", "brown"};
constexpr std::array<std::array<int, 3>, kColours> kColourRgb = {{{220, 30, 30},
                                                                   {30, 190, 50},
                                                                   {40, 70, 235},
                                                                   {235, 225, 40},
                                                                   {225, 40, 215},
                                                                   {40, 215, 225},
                                                                   {245, 135, 20},
                                                                   {130, 40, 190},
                                                                   {240, 240, 240},
                                                                   {150, 90, 40}}};
constexpr std::array<const char*, kShapes> kShapeNames = {
    "square",           "circle", "triangle", "horizontal stripes", "vertical stripes",
    "diagonal stripes", "cross",  "ring",     "checkerboard",       "diamond"};

// Class c: colour c % 10, shape (c % 10 + c / 10) % 10; the first 10 classes differ in both,
// and the 100 (colour, shape) pairs are all distinct.
int colour_of(int64_t c) { return static_cast<int>(c % kColours); }
int shape_of(int64_t c) { return static_cast<int>((c % kColours + c / kColours) % kShapes); }

// Whether the point (u, v) in [-1, 1]^2 of a pattern's box is inside shape s.
bool inside(int s, double u, double v) {
  const double au = std::fabs(u), av = std::fabs(v);
  const auto band = [](double t, double per_unit) {
    return static_cast<int64_t>(std::floor((t + 2.0) * per_unit)) % 2 == 0;
  };
  switch (s) {
    case 0: return au <= 0.8 && av <= 0.8;                                  // square
    case 1: return u * u + v * v <= 0.85 * 0.85;                            // circle
    case 2: return v >= -0.85 && v <= 0.85 && au <= (v + 0.85) / 1.7 * 0.9;  // triangle
    case 3: return au <= 0.9 && av <= 0.9 && band(v, 2.0);                  // horizontal stripes
    case 4: return au <= 0.9 && av <= 0.9 && band(u, 2.0);                  // vertical stripes
    case 5: return au <= 0.9 && av <= 0.9 && band(u + v, 1.5);              // diagonal stripes
    case 6: return (au <= 0.25 && av <= 0.9) || (av <= 0.25 && au <= 0.9);  // cross
    case 7: {                                                               // ring
      const double r2 = u * u + v * v;
      return r2 >= 0.5 * 0.5 && r2 <= 0.9 * 0.9;
    }
    case 8: return (static_cast<int64_t>(std::floor((u + 1.0) * 2.0)) +     // checkerboard
                    static_cast<int64_t>(std::floor((v + 1.0) * 2.0))) % 2 == 0;
    default: return au + av <= 0.9;                                         // diamond
  }
}

// Label sets for n images so that class c holds about share[c] of all labels: each image draws
// a capacity of 1-3 labels, the label total is split across classes by largest remainder
// (each class at least 1, at most n images), and Ryser's greedy construction places each class
// on the images with the most remaining capacity (random tie-break), which realises the
// counts exactly whenever any assignment can.
std::vector<std::vector<int>> assign_labels(int64_t n, const std::vector<double>& share, Rng& rng) {
  const int64_t c_count = static_cast<int64_t>(share.size());
  const int64_t k_max = std::min<int64_t>(3, c_count);
  std::vector<int64_t> cap(static_cast<size_t>(n));
  for (auto& k : cap) {
    const double u = rng.uniform();
    k = std::min<int64_t>(k_max, u < 0.5 ? 1 : (u < 0.85 ? 2 : 3));
  }
  const int64_t total = std::accumulate(cap.begin(), cap.end(), int64_t{0});

  // Targets: largest-remainder rounding of total * share, clamped to [1, n].
  const double share_sum = std::accumulate(share.begin(), share.end(), 0.0);
  std::vector<int64_t> target(static_cast<size_t>(c_count));
  std::vector<std::pair<double, int64_t>> remainders;
  int64_t assigned = 0;
  for (int64_t c = 0; c < c_count; ++c) {
    const double exact = static_cast<double>(total) * share[c] / share_sum;
    target[c] = static_cast<int64_t>(std::floor(exact));
    assigned += target[c];
    remainders.emplace_back(-(exact - std::floor(exact)), c);
  }
  std::sort(remainders.begin(), remainders.end());
  for (int64_t j = 0; assigned < total; ++j, ++assigned) ++target[remainders[j % c_count].second];
  for (auto& t : target) t = std::clamp<int64_t>(t, 1, n);
  int64_t target_total = std::accumulate(target.begin(), target.end(), int64_t{0});
  // Keep n <= total <= n * k_max (every image 1..k_max labels); move labels at the head.
  for (int64_t c = 0; target_total < n; c = (c + 1) % c_count) {
    if (target[c] < n) ++target[c], ++target_total;
  }
  for (int64_t c = 0; target_total > n * k_max; c = (c + 1) % c_count) {
    if (target[c] > 1) --target[c], --target_total;
  }
  // Capacities to match the targets' total, changed at random images.
  int64_t cap_total = total;
  while (cap_total > target_total) {
    auto& k = cap[rng.below(static_cast<uint64_t>(n))];
    if (k > 1) --k, --cap_total;
  }
  while (cap_total < target_total) {
    auto& k = cap[rng.below(static_cast<uint64_t>(n))];
    if (k < k_max) ++k, ++cap_total;
  }

  // Ryser: classes in decreasing target order, each on the images with most capacity left.
  std::vector<int64_t> order(static_cast<size_t>(c_count));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int64_t a, int64_t b) { return target[a] > target[b]; });
  std::vector<std::vector<int>> labels(static_cast<size_t>(n));
  std::vector<int64_t> images(static_cast<size_t>(n));
  std::vector<uint64_t> key(static_cast<size_t>(n));
  for (int64_t c : order) {
    std::iota(images.begin(), images.end(), 0);
    for (auto& k : key) k = rng.below(std::numeric_limits<uint64_t>::max());
    std::sort(images.begin(), images.end(), [&](int64_t a, int64_t b) {
      return cap[a] != cap[b] ? cap[a] > cap[b] : (key[a] != key[b] ? key[a] < key[b] : a < b);
    });
    for (int64_t j = 0; j < target[c] && cap[images[j]] > 0; ++j) {
      labels[images[j]].push_back(static_cast<int>(c));
      --cap[images[j]];
    }
  }
  // Only reachable when no assignment exists: an image left without labels gets the class with
  // the fewest images.
  std::vector<int64_t> count(static_cast<size_t>(c_count), 0);
  for (const auto& l : labels)
    for (int c : l) ++count[c];
  for (auto& l : labels) {
    if (l.empty()) {
      const int64_t c = std::min_element(count.begin(), count.end()) - count.begin();
      l.push_back(static_cast<int>(c));
      ++count[c];
    }
    rng.shuffle(l);  // label order in the community files is not sorted either
  }
  return labels;
}

RgbImage render(const std::vector<int>& labels, int64_t size, uint64_t seed) {
  Rng rng(seed);
  RgbImage img;
  img.height = img.width = size;
  img.pixels.resize(static_cast<size_t>(size * size * 3));
  for (auto& p : img.pixels) p = static_cast<uint8_t>(rng.below(64));  // noisy dark background
  // One pattern per label, each in its own quadrant at a random offset.
  const int64_t half = size / 2;
  const int64_t box = std::max<int64_t>(4, (half * 3) / 4);
  std::vector<int> quadrants = {0, 1, 2, 3};
  rng.shuffle(quadrants);
  for (size_t j = 0; j < labels.size() && j < quadrants.size(); ++j) {
    const int shape = shape_of(labels[j]);
    const auto& rgb = kColourRgb[static_cast<size_t>(colour_of(labels[j]))];
    const int64_t x0 = (quadrants[j] % 2) * half + static_cast<int64_t>(rng.below(half - box + 1));
    const int64_t y0 = (quadrants[j] / 2) * half + static_cast<int64_t>(rng.below(half - box + 1));
    for (int64_t y = 0; y < box; ++y) {
      for (int64_t x = 0; x < box; ++x) {
        const double u = 2.0 * (static_cast<double>(x) + 0.5) / static_cast<double>(box) - 1.0;
        const double v = 2.0 * (static_cast<double>(y) + 0.5) / static_cast<double>(box) - 1.0;
        if (!inside(shape, u, v)) continue;
        uint8_t* p = &img.pixels[static_cast<size_t>(((y0 + y) * size + (x0 + x)) * 3)];
        for (int ch = 0; ch < 3; ++ch) {
          const int value = rgb[ch] + static_cast<int>(rng.below(41)) - 20;
          p[ch] = static_cast<uint8_t>(std::clamp(value, 0, 255));
        }
      }
    }
  }
  return img;
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  LMSWEEP_CHECK(out.good(), "cannot write '{}': check the output folder", path.string());
  out << text;
  out.close();
  LMSWEEP_CHECK(out.good(), "cannot write '{}' (disk full?)", path.string());
}

// Renders and writes one split; returns the split file's text.
std::string write_split(const fs::path& root, const std::string& name,
                        const std::vector<std::vector<int>>& labels, int64_t size, uint64_t seed,
                        uint64_t split_id) {
  std::error_code ec;
  fs::create_directories(root / name, ec);
  LMSWEEP_CHECK(!ec, "cannot create '{}': {}", (root / name).string(), ec.message());
  std::string text;
  for (size_t i = 0; i < labels.size(); ++i) {
    const std::string rel = fmt::format("{}/{:06d}.png", name, i);
    write_image((root / rel).string(), render(labels[i], size, mix_seed(seed, split_id, i)));
    text += rel;
    for (int c : labels[i]) text += fmt::format(" {}", c);
    text += '\n';
  }
  return text;
}

}  // namespace

std::string synthetic_class_name(int64_t c) {
  LMSWEEP_CHECK(c >= 0 && c < kColours * kShapes, "synthetic class {} out of range 0..{}", c,
                kColours * kShapes - 1);
  return std::string(kColourNames[static_cast<size_t>(colour_of(c))]) + " " +
         kShapeNames[static_cast<size_t>(shape_of(c))];
}

SyntheticDataset write_synthetic_dataset(const SyntheticOptions& o) {
  LMSWEEP_CHECK(!o.out_dir.empty(), "synthetic dataset: the output folder is empty");
  LMSWEEP_CHECK(o.num_classes >= 1 && o.num_classes <= kColours * kShapes,
                "synthetic dataset: num_classes {} must be in 1..{}", o.num_classes,
                kColours * kShapes);
  LMSWEEP_CHECK(o.train_images >= o.num_classes,
                "synthetic dataset: train_images {} must be at least num_classes {} (every class "
                "needs a training image)",
                o.train_images, o.num_classes);
  LMSWEEP_CHECK(o.test_images >= o.num_classes,
                "synthetic dataset: test_images {} must be at least num_classes {}",
                o.test_images, o.num_classes);
  LMSWEEP_CHECK(o.image_size >= 16 && o.image_size <= 1024,
                "synthetic dataset: image_size {} must be in 16..1024", o.image_size);
  LMSWEEP_CHECK(std::isfinite(o.pareto_alpha) && o.pareto_alpha > 0.0,
                "synthetic dataset: pareto_alpha {} must be positive", o.pareto_alpha);

  const fs::path root(o.out_dir);
  // A folder of the user's own split files is never overwritten: only one this writer marked.
  const fs::path marker = root / kSyntheticMarker;
  for (const char* name : {"labels.txt", "train.txt", "test.txt"})
    LMSWEEP_CHECK(!fs::exists(root / name) || fs::exists(marker),
                  "{}: it already holds {} that lmsweep synth-data did not write (no {}); choose another "
                  "folder, or remove the file to let it be written", o.out_dir, name, kSyntheticMarker);
  std::error_code ec;
  fs::create_directories(root, ec);
  LMSWEEP_CHECK(!ec, "cannot create '{}': {}", o.out_dir, ec.message());
  write_text(marker.string(), fmt::format("{{\"classes\": {}, \"train_images\": {}, \"test_images\": {}, "
                                          "\"size\": {}, \"seed\": {}}}\n",
                                          o.num_classes, o.train_images, o.test_images, o.image_size, o.seed));

  const int64_t c_count = o.num_classes;
  // Pareto quantiles at plotting positions 1 - (c+1)/(C+1): x_m ((C+1)/(c+1))^(1/alpha).
  std::vector<double> train_share(static_cast<size_t>(c_count)), test_share(static_cast<size_t>(c_count), 1.0);
  for (int64_t c = 0; c < c_count; ++c) {
    train_share[c] = std::pow(static_cast<double>(c_count + 1) / static_cast<double>(c + 1),
                              1.0 / o.pareto_alpha);
  }
  Rng rng(mix_seed(o.seed, 0, 0));
  const auto train_labels = assign_labels(o.train_images, train_share, rng);
  const auto test_labels = assign_labels(o.test_images, test_share, rng);

  std::string labels_text;
  for (int64_t c = 0; c < c_count; ++c) labels_text += fmt::format("{} {}\n", synthetic_class_name(c), c);

  SyntheticDataset out;
  out.data_root = root.string();
  out.labels_file = (root / "labels.txt").string();
  out.train_split = (root / "train.txt").string();
  out.test_split = (root / "test.txt").string();
  write_text(out.labels_file, labels_text);
  write_text(out.train_split, write_split(root, "train", train_labels, o.image_size, o.seed, 1));
  write_text(out.test_split, write_split(root, "test", test_labels, o.image_size, o.seed, 2));
  return out;
}

}  // namespace lmsweep
