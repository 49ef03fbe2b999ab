#pragma once
// A node-shared cache of decoded images: each split decoded once per node into one file of
// uint8 pixels, memory-mapped read-only by every process of the node (DESIGN.md section 5).
// Torch-free.
//
// File: DIR/lmsweep-images-<key as 16 hex>.u8 = a 64-byte header (magic, format version,
// count, size, key, pixel bytes) + [count, size, size, 3] RGB pixels, as load_images returns.
// The key hashes the data root, the split's image paths in order, every image file's size and
// modification time (ns), the image size and the resize algorithm's version: a changed input
// gets a new file name, so it is decoded again. Written once: the first process takes an
// flock on DIR/lmsweep-images-<key>.lock, checks again, decodes into <file>.tmp and renames it
// (a half-written file is never mapped); the others block on the lock, then map the file.
// A file whose size, magic, version or key does not match its header is decoded again.
// Files are never removed by lmsweep: `rm DIR/lmsweep-images-*` when no run uses them.
// Truncating a file that processes have mapped kills them with SIGBUS: remove, don't truncate.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "data/dataset.h"
#include "data/image.h"

namespace lmsweep {

// Bump when the decoded pixels of an unchanged input change (decoder or resize): old cache
// files then no longer match any key.
constexpr uint32_t kImageResizeVersion = 1;
constexpr uint32_t kImageCacheFormatVersion = 1;

struct ImageCacheOptions {
  std::string dir;  // folder of the cache files; "" = off: every process decodes its own copy
  // Test hook: runs just before this process decodes (with the lock held when caching).
  std::function<void()> before_decode;
};

// $TMPDIR if set, else /dev/shm if it exists and is writable, else /tmp.
std::string default_image_cache_dir();
// The --cache-dir flag: "auto" -> default_image_cache_dir(); "none" or "" -> "" (off); else DIR.
std::string resolve_image_cache_dir(const std::string& flag);

// What load_images_shared did.
struct CacheReport {
  bool decoded = false;  // this process decoded the images (cache off, fallback, or it wrote the file)
  bool mapped = false;   // the pixels are a read-only mapping of `file`
  bool waited = false;   // it blocked on the lock while another process decoded
  std::string file;      // the cache file ("" when the cache is off)
  std::string warning;   // why it fell back to a per-process decode ("" when it did not)
  double seconds = 0;    // wall time of the call
};

// The images of load_images(data_root, split, size, threads), through the cache of
// options.dir. A cache that cannot be used (folder missing and not creatable, not writable,
// full) gives a per-process decode and one warning line on stderr per folder and process.
// Throws lmsweep::Error as load_images does for a missing or corrupt image.
std::shared_ptr<const ImageSet> load_images_shared(const std::string& data_root, const Split& split, int64_t size,
                                                   int threads, const ImageCacheOptions& options,
                                                   CacheReport* report = nullptr);

// The key of (data_root, split, size): stats every image; throws lmsweep::Error naming an
// image that cannot be stat'ed.
uint64_t image_cache_key(const std::string& data_root, const Split& split, int64_t size);
// DIR/lmsweep-images-<16 hex>.u8
std::string image_cache_path(const std::string& dir, uint64_t key);

// One line for logs: "images: mapped 500 images of 224 px (75.3 MB) from FILE", "decoded ...".
std::string describe(const CacheReport& report, const ImageSet& images);

}  // namespace lmsweep
