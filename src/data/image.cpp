#include "data/image.h"

#include <png.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <mutex>
#include <thread>

#ifdef LMSWEEP_HAVE_OPENCV
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#endif

#include "common/error.h"

namespace lmsweep {
namespace fs = std::filesystem;

// ----------------------------------------------------------------------------------------------
// Decoding

#ifndef LMSWEEP_HAVE_OPENCV
namespace {

// Built without OpenCV (LMSWEEP_WITH_OPENCV=OFF): PNG through libpng, JPEG not at all.
constexpr const char* kNoOpenCv =
    "this lmsweep was built without OpenCV (LMSWEEP_WITH_OPENCV=OFF), so it reads and writes PNG only";

// What libpng's callbacks share; lives in the caller's frame, before setjmp.
struct PngRead {
  const uint8_t* data = nullptr;
  size_t size = 0, pos = 0;
  std::string error;
  std::vector<png_bytep> rows;
};

void png_read_memory(png_structp png, png_bytep out, png_size_t n) {
  auto* r = static_cast<PngRead*>(png_get_io_ptr(png));
  if (n > r->size - r->pos) png_error(png, "unexpected end of file (truncated PNG)");
  std::memcpy(out, r->data + r->pos, n);
  r->pos += n;
}

void png_on_error(png_structp png, png_const_charp message) {
  static_cast<PngRead*>(png_get_error_ptr(png))->error = message;
  png_longjmp(png, 1);
}

void png_on_warning(png_structp, png_const_charp) {}

// The transforms of OpenCV's PngDecoder for IMREAD_COLOR: 16 bits cut to their high byte, alpha
// stripped (not composited), palette and gray (1, 2, 4 bits too) expanded to RGB, interlacing
// undone; no gamma or colour-space conversion (PIL's convert("RGB") applies none either).
bool decode_png_rgb(const std::vector<uint8_t>& bytes, RgbImage* out, PngRead* r) {
  r->data = bytes.data();
  r->size = bytes.size();
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, r, png_on_error, png_on_warning);
  if (!png) {
    r->error = "out of memory";
    return false;
  }
  png_infop info = png_create_info_struct(png);
  if (!info || setjmp(png_jmpbuf(png))) {
    png_destroy_read_struct(&png, info ? &info : nullptr, nullptr);
    if (r->error.empty()) r->error = "cannot decode it";
    return false;
  }
  png_set_read_fn(png, r, png_read_memory);
  png_read_info(png, info);
  const int bit_depth = png_get_bit_depth(png, info);
  const int color_type = png_get_color_type(png, info);
  if (bit_depth == 16) png_set_strip_16(png);
  png_set_strip_alpha(png);
  if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
  if ((color_type & PNG_COLOR_MASK_COLOR) == 0) {
    if (bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    png_set_gray_to_rgb(png);
  }
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  const png_uint_32 width = png_get_image_width(png, info), height = png_get_image_height(png, info);
  if (png_get_channels(png, info) != 3 || png_get_bit_depth(png, info) != 8 ||
      png_get_rowbytes(png, info) != static_cast<size_t>(width) * 3)
    png_error(png, "unexpected layout after conversion to 8-bit RGB");
  out->height = height;
  out->width = width;
  out->pixels.resize(static_cast<size_t>(height) * width * 3);
  r->rows.resize(height);
  for (png_uint_32 y = 0; y < height; ++y) r->rows[y] = out->pixels.data() + static_cast<size_t>(y) * width * 3;
  png_read_image(png, r->rows.data());
  png_read_end(png, nullptr);
  png_destroy_read_struct(&png, &info, nullptr);
  return true;
}

}  // namespace
#endif

namespace {

// Walks the JPEG's segments by their lengths and its entropy-coded scans byte by byte to the
// image's own end-of-image marker (FF D9). Segments are skipped whole, so the FF D9 of an EXIF
// thumbnail inside APP1 is not taken for the image's end (ITU T.81 B.1.1).
bool jpeg_reaches_its_end(const std::vector<uint8_t>& b) {
  size_t i = 2;  // after SOI
  while (i + 1 < b.size()) {
    if (b[i] != 0xFF) return false;  // not at a marker: damaged
    while (i < b.size() && b[i] == 0xFF) ++i;  // fill bytes
    if (i >= b.size()) return false;
    const uint8_t marker = b[i++];
    if (marker == 0xD9) return true;
    if (marker == 0x01 || (marker >= 0xD0 && marker <= 0xD8)) continue;  // no length
    if (i + 2 > b.size()) return false;
    const size_t length = (static_cast<size_t>(b[i]) << 8) | b[i + 1];
    if (length < 2 || i + length > b.size()) return false;
    i += length;
    if (marker != 0xDA) continue;
    // Entropy-coded data after SOS: up to a marker other than a stuffed 00 or a restart marker.
    while (i + 1 < b.size() && !(b[i] == 0xFF && b[i + 1] != 0x00 && !(b[i + 1] >= 0xD0 && b[i + 1] <= 0xD7))) ++i;
    if (i + 1 >= b.size()) return false;
  }
  return false;
}

}  // namespace

RgbImage decode_image(const std::string& path) {
  std::error_code ec;
  const auto status = fs::status(path, ec);
  LMSWEEP_CHECK(fs::exists(status), "image not found: '{}': check the data root and the split file",
                path);
  LMSWEEP_CHECK(!fs::is_directory(status), "image path '{}' is a directory, not an image file",
                path);
  std::ifstream in(path, std::ios::binary);
  LMSWEEP_CHECK(in.good(), "cannot open image '{}': check its permissions", path);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  LMSWEEP_CHECK(!in.bad(), "cannot read image '{}'", path);
  LMSWEEP_CHECK(!bytes.empty(), "corrupt image '{}': the file is empty", path);

  // libjpeg decodes a truncated JPEG with a warning (grey bottom rows); PIL raises "image file is
  // truncated". A JPEG that ends before its own end-of-image marker is such a file.
  const bool is_jpeg = bytes.size() >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF;
  if (is_jpeg)
    LMSWEEP_CHECK(jpeg_reaches_its_end(bytes), "corrupt image '{}': truncated JPEG (it ends before its end-of-image "
                  "marker)", path);

  const bool is_png =
      bytes.size() >= 8 && png_sig_cmp(reinterpret_cast<png_const_bytep>(bytes.data()), 0, 8) == 0;
#ifndef LMSWEEP_HAVE_OPENCV
  LMSWEEP_CHECK(!is_jpeg, "cannot decode JPEG image '{}': {}", path, kNoOpenCv);
  LMSWEEP_CHECK(is_png, "corrupt image '{}': not a PNG file ({})", path, kNoOpenCv);
  RgbImage decoded;
  PngRead state;
  LMSWEEP_CHECK(decode_png_rgb(bytes, &decoded, &state), "corrupt image '{}': {} (libpng)", path, state.error);
  return decoded;
#else
  // OpenCV's PNG decoder lets libpng print its errors on stderr ("libpng error: ..."), a second
  // line beside ours; libpng's simplified API reports them in image.message instead.
  if (is_png) {
    png_image png{};
    png.version = PNG_IMAGE_VERSION;
    bool ok = png_image_begin_read_from_memory(&png, bytes.data(), bytes.size()) != 0;
    if (ok) {
      png.format = PNG_FORMAT_RGBA;
      std::vector<png_byte> scratch(PNG_IMAGE_SIZE(png));
      ok = png_image_finish_read(&png, nullptr, scratch.data(), 0, nullptr) != 0;
    }
    const std::string why = png.message;
    png_image_free(&png);
    LMSWEEP_CHECK(ok, "corrupt image '{}': {} (libpng)", path, why);
  }
  cv::Mat bgr;
  try {
    bgr = cv::imdecode(bytes, cv::IMREAD_COLOR | cv::IMREAD_IGNORE_ORIENTATION);
  } catch (const cv::Exception& e) {
    throw_error("corrupt image '{}': OpenCV cannot decode it ({})", path, e.what());
  }
  LMSWEEP_CHECK(!bgr.empty(), "corrupt image '{}': cannot decode it as JPEG/PNG", path);
  LMSWEEP_CHECK(bgr.type() == CV_8UC3, "image '{}': unexpected decoded type {}", path, bgr.type());

  RgbImage out;
  out.height = bgr.rows;
  out.width = bgr.cols;
  out.pixels.resize(static_cast<size_t>(out.height * out.width * 3));
  for (int y = 0; y < bgr.rows; ++y) {
    const uint8_t* src = bgr.ptr<uint8_t>(y);
    uint8_t* dst = out.pixels.data() + static_cast<size_t>(y) * out.width * 3;
    for (int x = 0; x < bgr.cols; ++x) {
      dst[3 * x + 0] = src[3 * x + 2];
      dst[3 * x + 1] = src[3 * x + 1];
      dst[3 * x + 2] = src[3 * x + 0];
    }
  }
  return out;
#endif
}

void write_image(const std::string& path, const RgbImage& image, int jpeg_quality) {
  LMSWEEP_CHECK(image.height > 0 && image.width > 0 &&
                    image.pixels.size() == static_cast<size_t>(image.height * image.width * 3),
                "write_image '{}': image of {}x{} holds {} bytes, expected H*W*3", path,
                image.height, image.width, image.pixels.size());
#ifndef LMSWEEP_HAVE_OPENCV
  (void)jpeg_quality;
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  LMSWEEP_CHECK(ext == ".png", "cannot write image '{}': {}", path, kNoOpenCv);
  png_image png{};
  png.version = PNG_IMAGE_VERSION;
  png.width = static_cast<png_uint_32>(image.width);
  png.height = static_cast<png_uint_32>(image.height);
  png.format = PNG_FORMAT_RGB;
  const bool written = png_image_write_to_file(&png, path.c_str(), 0, image.pixels.data(), 0, nullptr) != 0;
  const std::string why = png.message;
  png_image_free(&png);
  LMSWEEP_CHECK(written, "cannot write image '{}': {} (libpng): check the folder exists", path, why);
#else
  cv::Mat bgr(static_cast<int>(image.height), static_cast<int>(image.width), CV_8UC3);
  for (int y = 0; y < bgr.rows; ++y) {
    const uint8_t* src = image.pixels.data() + static_cast<size_t>(y) * image.width * 3;
    uint8_t* dst = bgr.ptr<uint8_t>(y);
    for (int x = 0; x < bgr.cols; ++x) {
      dst[3 * x + 0] = src[3 * x + 2];
      dst[3 * x + 1] = src[3 * x + 1];
      dst[3 * x + 2] = src[3 * x + 0];
    }
  }
  bool ok = false;
  try {
    ok = cv::imwrite(path, bgr, {cv::IMWRITE_JPEG_QUALITY, jpeg_quality});
  } catch (const cv::Exception& e) {
    throw_error("cannot write image '{}': {}", path, e.what());
  }
  LMSWEEP_CHECK(ok, "cannot write image '{}': check the folder exists and the extension", path);
#endif
}

// ----------------------------------------------------------------------------------------------
// PIL's antialiased bilinear resize (Pillow src/libImaging/Resample.c), 8 bits per channel.

namespace {

// 8 bits for the result, 2 for overflow / sign: coefficients are fixed point with 22 bits.
constexpr int kPrecisionBits = 32 - 8 - 2;

double bilinear_filter(double x) {
  if (x < 0.0) x = -x;
  if (x < 1.0) return 1.0 - x;
  return 0.0;
}

// For each output position: the first input index, the number of taps, and ksize fixed-point
// coefficients (Resample.c precompute_coeffs + normalize_coeffs_8bpc, box = [0, in_size)).
struct Coefficients {
  int ksize = 0;
  std::vector<int> first, count;  // [out]
  std::vector<int32_t> k;         // [out, ksize]
};

Coefficients precompute_coeffs(int in_size, int out_size) {
  constexpr double kSupport = 1.0;  // BILINEAR's support
  const float in0 = 0.0f, in1 = static_cast<float>(in_size);
  // Pillow computes the box width in float, then promotes to double.
  const double scale = static_cast<double>(in1 - in0) / out_size;
  const double filterscale = scale < 1.0 ? 1.0 : scale;  // upscaling keeps the filter's width
  const double support = kSupport * filterscale;
  Coefficients c;
  c.ksize = static_cast<int>(std::ceil(support)) * 2 + 1;
  c.first.resize(out_size);
  c.count.resize(out_size);
  c.k.assign(static_cast<size_t>(out_size) * c.ksize, 0);
  std::vector<double> w(c.ksize);
  for (int xx = 0; xx < out_size; ++xx) {
    const double center = in0 + (xx + 0.5) * scale;
    const double ss = 1.0 / filterscale;
    // (int) truncates toward zero, as in C; negative values are clamped to 0 just after.
    int xmin = static_cast<int>(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = static_cast<int>(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    double ww = 0.0;
    for (int x = 0; x < xmax; ++x) {
      w[x] = bilinear_filter((x + xmin - center + 0.5) * ss);
      ww += w[x];
    }
    int32_t* k = &c.k[static_cast<size_t>(xx) * c.ksize];
    for (int x = 0; x < xmax; ++x) {
      const double v = ww != 0.0 ? w[x] / ww : w[x];
      // normalize_coeffs_8bpc: round half away from zero to 22-bit fixed point.
      k[x] = v < 0 ? static_cast<int32_t>(-0.5 + v * (1 << kPrecisionBits))
                   : static_cast<int32_t>(0.5 + v * (1 << kPrecisionBits));
    }
    c.first[xx] = xmin;
    c.count[xx] = xmax;
  }
  return c;
}

// clip8: the accumulator (started at 1 << (kPrecisionBits - 1), i.e. +0.5) shifted down,
// clamped to 0..255.
inline uint8_t clip8(int32_t v) {
  const int32_t s = v >> kPrecisionBits;
  return static_cast<uint8_t>(s < 0 ? 0 : (s > 255 ? 255 : s));
}

// Rows [row0, row0 + rows) of `in` (width in_w) -> `out` (rows x out_w).
void resample_horizontal(const uint8_t* in, int in_w, int row0, int rows, const Coefficients& c,
                         int out_w, uint8_t* out) {
  for (int yy = 0; yy < rows; ++yy) {
    const uint8_t* src = in + static_cast<size_t>(row0 + yy) * in_w * 3;
    uint8_t* dst = out + static_cast<size_t>(yy) * out_w * 3;
    for (int xx = 0; xx < out_w; ++xx) {
      const int32_t* k = &c.k[static_cast<size_t>(xx) * c.ksize];
      const uint8_t* p = src + static_cast<size_t>(c.first[xx]) * 3;
      int32_t s0 = 1 << (kPrecisionBits - 1), s1 = s0, s2 = s0;
      for (int x = 0; x < c.count[xx]; ++x) {
        s0 += p[3 * x + 0] * k[x];
        s1 += p[3 * x + 1] * k[x];
        s2 += p[3 * x + 2] * k[x];
      }
      dst[3 * xx + 0] = clip8(s0);
      dst[3 * xx + 1] = clip8(s1);
      dst[3 * xx + 2] = clip8(s2);
    }
  }
}

// `in` (width w, rows indexed from 0) -> out (out_h x w); first[] is relative to `in`.
void resample_vertical(const uint8_t* in, int w, const Coefficients& c, const std::vector<int>& first,
                       int out_h, uint8_t* out) {
  const size_t stride = static_cast<size_t>(w) * 3;
  // Row-wise accumulation (same sums, same order per element as Pillow's loop): vectorises.
  std::vector<int32_t> acc(stride);
  for (int yy = 0; yy < out_h; ++yy) {
    const int32_t* k = &c.k[static_cast<size_t>(yy) * c.ksize];
    const uint8_t* base = in + static_cast<size_t>(first[yy]) * stride;
    uint8_t* dst = out + static_cast<size_t>(yy) * stride;
    std::fill(acc.begin(), acc.end(), 1 << (kPrecisionBits - 1));
    for (int y = 0; y < c.count[yy]; ++y) {
      const uint8_t* row = base + static_cast<size_t>(y) * stride;
      const int32_t ky = k[y];
      for (size_t i = 0; i < stride; ++i) acc[i] += row[i] * ky;
    }
    for (size_t i = 0; i < stride; ++i) dst[i] = clip8(acc[i]);
  }
}

}  // namespace

RgbImage resize_bilinear_antialias(const RgbImage& in, int64_t out_h, int64_t out_w) {
  LMSWEEP_CHECK(in.height > 0 && in.width > 0 &&
                    in.pixels.size() == static_cast<size_t>(in.height * in.width * 3),
                "resize: input image of {}x{} holds {} bytes, expected H*W*3", in.height, in.width,
                in.pixels.size());
  LMSWEEP_CHECK(out_h > 0 && out_w > 0, "resize: output size {}x{} must be positive", out_h,
                out_w);
  constexpr int64_t kMax = std::numeric_limits<int>::max() / 64;
  LMSWEEP_CHECK(in.height < kMax && in.width < kMax && out_h < kMax && out_w < kMax,
                "resize: size {}x{} -> {}x{} too large", in.height, in.width, out_h, out_w);
  const int in_h = static_cast<int>(in.height), in_w = static_cast<int>(in.width);
  const int oh = static_cast<int>(out_h), ow = static_cast<int>(out_w);
  // PIL's Image.resize returns a copy when the size does not change.
  if (oh == in_h && ow == in_w) return in;

  const bool need_horizontal = ow != in_w;
  const bool need_vertical = oh != in_h;
  const Coefficients vert = precompute_coeffs(in_h, oh);
  // ImagingResampleInner: the horizontal pass only covers the rows the vertical pass reads.
  const int ybox_first = vert.first[0];
  const int ybox_last = vert.first[oh - 1] + vert.count[oh - 1];

  std::vector<uint8_t> temp;
  const uint8_t* src = in.pixels.data();
  int src_w = in_w;
  std::vector<int> vfirst = vert.first;
  if (need_horizontal) {
    const Coefficients horiz = precompute_coeffs(in_w, ow);
    const int rows = ybox_last - ybox_first;
    temp.resize(static_cast<size_t>(rows) * ow * 3);
    resample_horizontal(in.pixels.data(), in_w, ybox_first, rows, horiz, ow, temp.data());
    for (int& f : vfirst) f -= ybox_first;
    src = temp.data();
    src_w = ow;
    if (!need_vertical) {
      // Same height: rows == in_h, and temp is the result.
      RgbImage out;
      out.height = in_h;
      out.width = ow;
      out.pixels = std::move(temp);
      return out;
    }
  }
  RgbImage out;
  out.height = oh;
  out.width = src_w;
  out.pixels.resize(static_cast<size_t>(oh) * src_w * 3);
  resample_vertical(src, src_w, vert, vfirst, oh, out.pixels.data());
  return out;
}

// ----------------------------------------------------------------------------------------------
// Loading a split

ImageSet::ImageSet(int64_t count_, int64_t size_, std::vector<uint8_t> pixels) : count(count_), size(size_) {
  LMSWEEP_CHECK(pixels.size() == bytes(), "ImageSet: {} bytes for {} images of {} px, expected {}", pixels.size(),
                count, size, bytes());
  auto owned = std::make_shared<const std::vector<uint8_t>>(std::move(pixels));
  data_ = owned->data();
  owner_ = std::move(owned);
}

ImageSet::ImageSet(int64_t count_, int64_t size_, const uint8_t* data, std::shared_ptr<const void> owner)
    : count(count_), size(size_), data_(data), owner_(std::move(owner)) {}

ImageSet load_images(const std::string& data_root, const Split& split, int64_t size, int threads) {
  LMSWEEP_CHECK(size > 0 && size <= 65536, "load_images: image size {} must be in 1..65536", size);
  const auto count = static_cast<int64_t>(split.entries.size());
  std::vector<uint8_t> pixels(static_cast<size_t>(size * size * 3) * static_cast<size_t>(count));
  load_images_into(data_root, split, size, threads, pixels.data());
  return ImageSet(count, size, std::move(pixels));
}

void load_images_into(const std::string& data_root, const Split& split, int64_t size, int threads,
                      uint8_t* out) {
  LMSWEEP_CHECK(size > 0 && size <= 65536, "load_images: image size {} must be in 1..65536", size);
  const auto count = static_cast<int64_t>(split.entries.size());
  const size_t per_image = static_cast<size_t>(size * size * 3);
  if (count == 0) return;

  int n_threads = threads > 0 ? threads : static_cast<int>(std::thread::hardware_concurrency());
  n_threads = std::max(1, std::min<int>(n_threads, static_cast<int>(count)));

  const fs::path root(data_root);
  std::atomic<int64_t> next{0};
  std::mutex error_mutex;
  // The first failure in split order wins, whatever the thread timing: workers still process
  // every index below the failing one, and skip those above it.
  std::atomic<int64_t> first_error{count};
  std::string error_message;

  auto worker = [&]() {
    for (;;) {
      const int64_t i = next.fetch_add(1);
      if (i >= count || i > first_error.load()) return;
      const SplitEntry& e = split.entries[static_cast<size_t>(i)];
      try {
        const RgbImage img = decode_image((root / e.path).string());
        const RgbImage sq = resize_bilinear_antialias(img, size, size);
        std::memcpy(out + per_image * static_cast<size_t>(i), sq.pixels.data(), per_image);
      } catch (const std::exception& ex) {
        std::lock_guard<std::mutex> lock(error_mutex);
        if (i < first_error.load()) {
          first_error.store(i);
          error_message = e.line > 0 ? fmt::format("{} (line {} of {})", ex.what(), e.line,
                                                   split.file)
                                     : fmt::format("{} (image {} of {})", ex.what(), i,
                                                   split.file);
        }
      }
    }
  };
  if (n_threads == 1) {
    worker();
  } else {
    std::vector<std::thread> pool;
    pool.reserve(static_cast<size_t>(n_threads));
    for (int t = 0; t < n_threads; ++t) pool.emplace_back(worker);
    for (auto& t : pool) t.join();
  }
  if (first_error.load() < count) throw Error(error_message);
}

}  // namespace lmsweep
