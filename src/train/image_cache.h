#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "data/dataset.h"
#include "data/image.h"

namespace lmsweep {

// Decoded, resized uint8 images shared by the trials of one process (a sweep worker decodes
// each split once, not once per trial). Thread-safe.
class ImageCache {
 public:
  std::shared_ptr<const ImageSet> get(const std::string& data_root, const Split& split, int64_t size,
                                      int threads);

 private:
  std::mutex mutex_;
  std::map<std::string, std::shared_ptr<const ImageSet>> sets_;
};

}  // namespace lmsweep
