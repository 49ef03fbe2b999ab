#pragma once
// A small long-tailed multi-label dataset written to disk in the VOC-MLT / COCO-MLT formats, so
// the whole pipeline (and the README's default job) runs without downloading any image.
//
// Classes are (colour, shape) pairs: "red square", "green circle", "blue triangle", ...; an
// image holds one pattern per label, each in its own quadrant at a random offset, on a noisy
// dark background. Training class frequencies follow a Pareto law, as VOC-MLT / COCO-MLT were
// drawn (Wu et al., ECCV 2020): class c (c = 0 most frequent) gets a share proportional to the
// Pareto quantile at plotting position 1 - (c+1)/(C+1), i.e. ((C+1)/(c+1))^(1/alpha). With the
// defaults: 2 head (>= 100 images), 3 middle (20..99) and 5 tail (< 20) classes, every class with
// at least 1 training image. The test split is balanced across classes (as VOC2007 test is
// not long-tailed), every class present. Images hold 1-3 labels (about 50% 1, 35% 2, 15% 3).
// Everything is a pure function of the options (own draws from std::mt19937_64; no
// std::*_distribution, whose output differs across standard libraries).
#include <cstdint>
#include <string>

namespace lmsweep {

// The file write_synthetic_dataset leaves in its folder: split files beside it are its own and
// may be written again; split files without it are the user's and are never overwritten.
inline constexpr const char* kSyntheticMarker = "lmsweep-synthetic.json";


struct SyntheticOptions {
  std::string out_dir;           // created if missing; files in it are overwritten
  int64_t num_classes = 10;      // 1..100
  int64_t train_images = 400;
  int64_t test_images = 200;
  int64_t image_size = 32;       // square images, >= 16
  double pareto_alpha = 0.6;     // shape of the Pareto law: smaller = longer tail
  uint64_t seed = 0;
};

struct SyntheticDataset {
  std::string labels_file, train_split, test_split;  // out_dir/labels.txt, train.txt, test.txt
  std::string data_root;                             // out_dir: split paths are relative to it
};

// Writes out_dir/labels.txt, train.txt, test.txt and out_dir/{train,test}/NNNNNN.png.
// Throws lmsweep::Error naming the option at fault, or the file that cannot be written.
SyntheticDataset write_synthetic_dataset(const SyntheticOptions& options);

// The name of class c of the synthetic dataset ("red square", ...), c in 0..99.
std::string synthetic_class_name(int64_t c);

}  // namespace lmsweep
