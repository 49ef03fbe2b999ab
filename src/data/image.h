#pragma once
// Image decoding (OpenCV codecs only) and PIL-exact squash resizing. Torch-free.
//
// The reference (damilab/lm-clip dataset_loaders/voc_mlt.py) does
//   Image.open(path).convert("RGB") -> transforms.Resize((s, s)) -> ...
// and torchvision's Resize on a PIL image is PIL's Image.resize((s, s), Image.BILINEAR), an
// antialiased (support scaled by the downscale factor) separable filter in 8-bit fixed point.
// resize_bilinear_antialias ports it bit for bit, so cached uint8 pixels equal the reference's.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace lmsweep {

struct RgbImage {
  int64_t height = 0, width = 0;
  std::vector<uint8_t> pixels;  // H x W x 3, RGB, row-major
};

// Decodes a JPEG / PNG (anything OpenCV's imgcodecs reads) to RGB; grayscale and palette
// images become 3 channels, an alpha channel is dropped (as PIL's convert("RGB")), and EXIF
// orientation is ignored (PIL's Image.open does not apply it). Throws lmsweep::Error naming
// the file when it is missing, unreadable, truncated (JPEG without its end marker, which PIL
// refuses too) or cannot be decoded.
RgbImage decode_image(const std::string& path);

// Writes an RGB image; the format follows the extension (.png, .jpg, ...). jpeg_quality is
// used for JPEG only. Throws lmsweep::Error naming the file on failure.
void write_image(const std::string& path, const RgbImage& image, int jpeg_quality = 95);

// PIL's Image.resize((out_w, out_h), Image.BILINEAR) for an RGB uint8 image, bit-exact
// (Pillow src/libImaging/Resample.c: precompute_coeffs, normalize_coeffs_8bpc,
// ImagingResampleHorizontal_8bpc / Vertical_8bpc, ImagingResampleInner). Same size: a copy.
// in: [H, W, 3] -> [out_h, out_w, 3].
RgbImage resize_bilinear_antialias(const RgbImage& in, int64_t out_h, int64_t out_w);

// Every image of a split, decoded and squash-resized to size x size, in split order:
// [count, size, size, 3] RGB, contiguous, read-only. The bytes are either owned (a vector) or
// a read-only mapping of a node-shared cache file (data/image_cache_file.h); `owner` keeps
// them alive, so copies of an ImageSet share the same bytes. Never write through data():
// mapped pages are PROT_READ (a write faults) and other ranks map the same file.
struct ImageSet {
  int64_t count = 0, size = 0;

  ImageSet() = default;
  // Owns `pixels`, which must hold count * size * size * 3 bytes.
  ImageSet(int64_t count, int64_t size, std::vector<uint8_t> pixels);
  // A view of `bytes()` bytes at `data`, kept alive by `owner`.
  ImageSet(int64_t count, int64_t size, const uint8_t* data, std::shared_ptr<const void> owner);

  const uint8_t* data() const { return data_; }
  size_t bytes() const { return static_cast<size_t>(count * size * size * 3); }
  const uint8_t* image(int64_t i) const { return data_ + static_cast<size_t>(i * size * size * 3); }

 private:
  const uint8_t* data_ = nullptr;
  std::shared_ptr<const void> owner_;
};

// Paths are data_root / entry.path. Runs on `threads` threads (0 = all cores); the result does
// not depend on the thread count. On failure throws lmsweep::Error for the first failing image
// in split order, naming its path, the split file and line, and whether it is missing or corrupt.
ImageSet load_images(const std::string& data_root, const Split& split, int64_t size,
                     int threads = 0);
// The same into `out`, which holds split.entries.size() * size * size * 3 bytes (e.g. a
// writable mapping of a cache file being written).
void load_images_into(const std::string& data_root, const Split& split, int64_t size, int threads,
                      uint8_t* out);

}  // namespace lmsweep
