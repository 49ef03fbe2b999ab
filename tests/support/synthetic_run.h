#pragma once
// Training options over the built-in synthetic dataset written into a test's folder, with a
// tiny random-weight ViT: the fixture the trainer's tests share.
#include <cstdint>
#include <filesystem>

#include "data/synthetic.h"
#include "train/options.h"

namespace lmsweep::testing {

inline const char* const kTinyVit =
    "vit:res=32,patch=8,width=32,layers=1,embed=16,text-width=32,text-layers=1,vocab=514";

// dir/synth holds the data; every other option is TrainOptions' default but the architecture.
inline TrainOptions synthetic_run(const std::filesystem::path& dir, int64_t train_images, int64_t test_images,
                                  uint64_t data_seed = 0) {
  SyntheticOptions so;
  so.out_dir = (dir / "synth").string();
  so.train_images = train_images;
  so.test_images = test_images;
  so.seed = data_seed;
  const SyntheticDataset ds = write_synthetic_dataset(so);
  TrainOptions o;
  o.arch = kTinyVit;
  o.data_root = ds.data_root;
  o.train = ds.train_split;
  o.test = ds.test_split;
  o.labels = ds.labels_file;
  return o;
}

}  // namespace lmsweep::testing
