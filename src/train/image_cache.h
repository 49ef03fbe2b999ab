#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "data/dataset.h"
#include "data/image.h"
#include "data/image_cache_file.h"

namespace lmsweep {

// Decoded, resized uint8 images shared by the trials of one process (a sweep worker decodes
// or maps each split once, not once per trial), and through the node-shared cache files of
// `cache` (data/image_cache_file.h) by the processes of a node. Thread-safe.
class ImageCache {
 public:
  // Where the "images: mapped ... from FILE" / "images: decoded ..." line of each split goes
  // (default: stdout, with the per-epoch lines).
  using Log = std::function<void(const std::string&)>;
  explicit ImageCache(Log log = {}) : log_(std::move(log)) {}

  std::shared_ptr<const ImageSet> get(const std::string& data_root, const Split& split, int64_t size,
                                      int threads, const ImageCacheOptions& cache = {});

 private:
  std::mutex mutex_;
  Log log_;
  std::map<std::string, std::shared_ptr<const ImageSet>> sets_;
};

}  // namespace lmsweep
