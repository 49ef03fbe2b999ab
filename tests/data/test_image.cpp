// Decoding and PIL-exact resizing; loading a split on several threads.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include <gtest/gtest.h>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "support/errors.h"
#include "common/error.h"
#include "data/image.h"
#include "support/shared_data.h"

namespace lmsweep {
namespace {

namespace fs = std::filesystem;
using testing::temp_dir;

// Gray image (R = G = B) from rows of values.
RgbImage gray(const std::vector<std::vector<int>>& rows) {
  RgbImage img;
  img.height = static_cast<int64_t>(rows.size());
  img.width = static_cast<int64_t>(rows[0].size());
  for (const auto& r : rows)
    for (int v : r)
      for (int ch = 0; ch < 3; ++ch) img.pixels.push_back(static_cast<uint8_t>(v));
  return img;
}

int px(const RgbImage& img, int64_t y, int64_t x, int ch) {
  return img.pixels[static_cast<size_t>((y * img.width + x) * 3 + ch)];
}

// Pseudo-random RGB image (fixed seed), smooth enough to look like a photo to a JPEG encoder.
RgbImage random_image(int64_t h, int64_t w, uint64_t seed) {
  std::mt19937_64 gen(seed);
  RgbImage img;
  img.height = h;
  img.width = w;
  img.pixels.resize(static_cast<size_t>(h * w * 3));
  const double fx = 0.01 + static_cast<double>(gen() % 100) / 2000.0;
  const double fy = 0.01 + static_cast<double>(gen() % 100) / 2000.0;
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x)
      for (int ch = 0; ch < 3; ++ch) {
        const double base = 127.5 + 100.0 * std::sin(fx * x * (ch + 1) + fy * y);
        img.pixels[static_cast<size_t>((y * w + x) * 3 + ch)] =
            static_cast<uint8_t>(std::min(255.0, std::max(0.0, base + static_cast<double>(gen() % 32))));
      }
  return img;
}

using testing::error_of;

// 4x4 -> 2x2. Pillow's precompute_coeffs: scale = 2, support = 1 * 2, ss = 1/2.
//   out 0: center 1, taps 0..2 (xmin = (int)(1 - 2 + 0.5) = 0, xmax = (int)3.5 = 3),
//          w = tri((x - 1 + 0.5) / 2) = 0.75, 0.75, 0.25 -> 3/7, 3/7, 1/7
//   out 1: center 3, taps 1..3, w = 0.25, 0.75, 0.75 -> 1/7, 3/7, 3/7
//   fixed point (22 bits, round half away from 0): 3/7 -> 1797559, 1/7 -> 599186 (sum 2^22).
// Horizontal first, on rows a, a+10, a+20, a+30 (a = 60 y):
//   (1797559 (2a + 10) + 599186 (a + 20) + 2^21) >> 22 = a + 7   (exact a + 7.14)
//   (599186 (a + 10) + 1797559 (2a + 50) + 2^21) >> 22 = a + 23  (exact a + 22.86)
// Then vertical on the 8-bit rows [7 23] [67 83] [127 143] [187 203]:
//   col 0: (1797559 (7 + 67) + 599186 * 127 + 2^21) >> 22 = 211213140 >> 22 = 50
//          (599186 * 67 + 1797559 (127 + 187) + 2^21) >> 22 = 606676140 >> 22 = 144
//   col 1: (1797559 (23 + 83) + 599186 * 143 + 2^21) >> 22 = 278322004 >> 22 = 66
//          (599186 * 83 + 1797559 (143 + 203) + 2^21) >> 22 = 673785004 >> 22 = 160
TEST(DataResize, FourByFourToTwoByTwoAsPil) {
  const RgbImage in = gray({{0, 10, 20, 30}, {60, 70, 80, 90}, {120, 130, 140, 150},
                            {180, 190, 200, 210}});
  const RgbImage out = resize_bilinear_antialias(in, 2, 2);
  ASSERT_EQ(out.height, 2);
  ASSERT_EQ(out.width, 2);
  const int expected[2][2] = {{50, 66}, {144, 160}};
  for (int y = 0; y < 2; ++y)
    for (int x = 0; x < 2; ++x)
      for (int ch = 0; ch < 3; ++ch) EXPECT_EQ(px(out, y, x, ch), expected[y][x]) << y << x << ch;
}

// 3x3 -> 2x2. scale = 1.5, support = 1.5, ss = 1/1.5.
//   out 0: center 0.75, taps 0..1 (xmin = (int)-0.25 = 0, xmax = (int)2.75 = 2),
//          w = tri(-0.25/1.5) = 5/6, tri(0.75/1.5) = 1/2 -> 0.625, 0.375 (exact in 22 bits)
//   out 1: center 2.25, taps 1..2 -> 0.375, 0.625
// so each pass is floor((5 a + 3 b) / 8 + 0.5): halves round up.
//   R = v: rows (0 100 200) (50 150 250) (255 0 128)
//     horizontal: (37.5 -> 38, 162.5 -> 163) (87.5 -> 88, 212.5 -> 213) (159.375 -> 159, 80)
//     vertical:   col 0 (38 88 159): 56.75 -> 57, 132.375 -> 132
//                 col 1 (163 213 80): 181.75 -> 182, 129.875 -> 130
//   G = 255 - v: rows (255 155 55) (205 105 5) (0 255 127)
//     horizontal: (217.5 -> 218, 92.5 -> 93) (167.5 -> 168, 42.5 -> 43) (95.625 -> 96, 175)
//     vertical:   col 0 (218 168 96): 199.25 -> 199, 123
//                 col 1 (93 43 175): 74.25 -> 74, 125.5 -> 126
//   B = 77 everywhere stays 77.
TEST(DataResize, ThreeByThreeToTwoByTwoAsPil) {
  const int v[3][3] = {{0, 100, 200}, {50, 150, 250}, {255, 0, 128}};
  RgbImage in;
  in.height = in.width = 3;
  for (auto& row : v)
    for (int value : row) {
      in.pixels.push_back(static_cast<uint8_t>(value));
      in.pixels.push_back(static_cast<uint8_t>(255 - value));
      in.pixels.push_back(77);
    }
  const RgbImage out = resize_bilinear_antialias(in, 2, 2);
  const int r[2][2] = {{57, 182}, {132, 130}};
  const int g[2][2] = {{199, 74}, {123, 126}};
  for (int y = 0; y < 2; ++y)
    for (int x = 0; x < 2; ++x) {
      EXPECT_EQ(px(out, y, x, 0), r[y][x]) << y << x;
      EXPECT_EQ(px(out, y, x, 1), g[y][x]) << y << x;
      EXPECT_EQ(px(out, y, x, 2), 77) << y << x;
    }
}

// 1x2 -> 1x4 (upscaling: support stays 1; only the horizontal pass runs).
//   centers 0.25, 0.75, 1.25, 1.75: taps {0: 1}, {0: .75, 1: .25}, {0: .25, 1: .75}, {1: 1}
//   (10, 20) -> 10, 12.5 -> 13, 17.5 -> 18, 20
TEST(DataResize, UpscaleOneByTwoToOneByFourAsPil) {
  const RgbImage out = resize_bilinear_antialias(gray({{10, 20}}), 1, 4);
  ASSERT_EQ(out.height, 1);
  ASSERT_EQ(out.width, 4);
  const int expected[4] = {10, 13, 18, 20};
  for (int x = 0; x < 4; ++x) EXPECT_EQ(px(out, 0, x, 0), expected[x]) << x;
}

// Only the vertical pass: the 3x3 case's vertical weights applied to a 3x1 column.
TEST(DataResize, VerticalOnly) {
  const RgbImage out = resize_bilinear_antialias(gray({{38}, {88}, {159}}), 2, 1);
  ASSERT_EQ(out.height, 2);
  ASSERT_EQ(out.width, 1);
  EXPECT_EQ(px(out, 0, 0, 0), 57);
  EXPECT_EQ(px(out, 1, 0, 0), 132);
}

// Golden values from Pillow 9.4.0 (Debian python3-pil), computed once with
//   a[y, x, c] = (7 x + 13 y + 101 c + (x y) % 31) % 256  (uint8, H x W x 3)
//   r = numpy.asarray(Image.fromarray(a, "RGB").resize((ow, oh), Image.BILINEAR))
// and stored as FNV-1a 64 of r's bytes plus three pixels. (The same check on 70 random sizes and
// on 30 PIL-written JPEG / grayscale JPEG / PNG files, decode included, gave 0 differing bytes.)
uint64_t fnv1a(const std::vector<uint8_t>& bytes) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint8_t b : bytes) h = (h ^ b) * 0x100000001b3ull;
  return h;
}

TEST(DataResize, MatchesPillowGoldenHashes) {
  struct Case {
    int64_t h, w, oh, ow;
    uint64_t hash;
    int first_r, middle_g, last_b;
  };
  const Case cases[] = {
      {375, 500, 224, 224, 0x884e1d6b9c3deb17ull, 12, 206, 101},
      {500, 375, 224, 224, 0xedb8a0f80cb16907ull, 14, 71, 81},
      {50, 40, 224, 224, 0xf07723b8ced925c0ull, 0, 57, 108},
      {333, 221, 17, 300, 0x57989685a4c6800dull, 112, 126, 119},
  };
  for (const Case& c : cases) {
    RgbImage in;
    in.height = c.h;
    in.width = c.w;
    for (int64_t y = 0; y < c.h; ++y)
      for (int64_t x = 0; x < c.w; ++x)
        for (int64_t ch = 0; ch < 3; ++ch)
          in.pixels.push_back(static_cast<uint8_t>((7 * x + 13 * y + 101 * ch + (x * y) % 31) % 256));
    const RgbImage out = resize_bilinear_antialias(in, c.oh, c.ow);
    EXPECT_EQ(px(out, 0, 0, 0), c.first_r) << c.h << "x" << c.w;
    EXPECT_EQ(px(out, c.oh / 2, c.ow / 2, 1), c.middle_g) << c.h << "x" << c.w;
    EXPECT_EQ(px(out, c.oh - 1, c.ow - 1, 2), c.last_b) << c.h << "x" << c.w;
    EXPECT_EQ(fnv1a(out.pixels), c.hash) << c.h << "x" << c.w << " -> " << c.oh << "x" << c.ow;
  }
}

TEST(DataResize, SameSizeIsIdentity) {
  const RgbImage in = random_image(37, 53, 1);
  const RgbImage out = resize_bilinear_antialias(in, 37, 53);
  EXPECT_EQ(out.height, 37);
  EXPECT_EQ(out.width, 53);
  EXPECT_EQ(out.pixels, in.pixels);
}

TEST(DataResize, ConstantImageStaysConstant) {
  for (auto [h, w, oh, ow] : std::vector<std::array<int64_t, 4>>{
           {375, 500, 224, 224}, {7, 5, 224, 224}, {224, 300, 224, 224}, {1, 1, 3, 2}}) {
    RgbImage in;
    in.height = h;
    in.width = w;
    for (int64_t i = 0; i < h * w; ++i) {
      in.pixels.push_back(201);
      in.pixels.push_back(0);
      in.pixels.push_back(255);
    }
    const RgbImage out = resize_bilinear_antialias(in, oh, ow);
    ASSERT_EQ(out.pixels.size(), static_cast<size_t>(oh * ow * 3));
    for (int64_t i = 0; i < oh * ow; ++i) {
      ASSERT_EQ(out.pixels[i * 3 + 0], 201) << h << "x" << w << " pixel " << i;
      ASSERT_EQ(out.pixels[i * 3 + 1], 0);
      ASSERT_EQ(out.pixels[i * 3 + 2], 255);
    }
  }
}

TEST(DataResize, RejectsBadSizes) {
  EXPECT_THROW(resize_bilinear_antialias(gray({{1, 2}}), 0, 2), Error);
  RgbImage broken;
  broken.height = 2;
  broken.width = 2;
  EXPECT_THROW(resize_bilinear_antialias(broken, 1, 1), Error);
}

TEST(DataDecode, PngRoundTripAndGrayscale) {
  const auto dir = temp_dir("decode_png");
  const RgbImage img = random_image(17, 23, 2);
  const auto path = (dir / "a.png").string();
  write_image(path, img);
  const RgbImage back = decode_image(path);
  EXPECT_EQ(back.height, 17);
  EXPECT_EQ(back.width, 23);
  EXPECT_EQ(back.pixels, img.pixels);  // lossless, and RGB order preserved both ways

  // A pure red pixel written by OpenCV directly (BGR) decodes as RGB (255, 0, 0).
  cv::Mat bgr(1, 1, CV_8UC3, cv::Scalar(0, 0, 255));
  ASSERT_TRUE(cv::imwrite((dir / "red.png").string(), bgr));
  const RgbImage red = decode_image((dir / "red.png").string());
  EXPECT_EQ(red.pixels, (std::vector<uint8_t>{255, 0, 0}));

  // Grayscale PNG -> 3 equal channels.
  cv::Mat g(2, 3, CV_8UC1);
  for (int i = 0; i < 6; ++i) g.data[i] = static_cast<uint8_t>(40 * i);
  ASSERT_TRUE(cv::imwrite((dir / "g.png").string(), g));
  const RgbImage gray3 = decode_image((dir / "g.png").string());
  ASSERT_EQ(gray3.pixels.size(), 18u);
  for (int i = 0; i < 6; ++i)
    for (int ch = 0; ch < 3; ++ch) EXPECT_EQ(gray3.pixels[i * 3 + ch], 40 * i);

  // RGBA PNG: alpha dropped.
  cv::Mat bgra(1, 1, CV_8UC4, cv::Scalar(10, 20, 30, 40));
  ASSERT_TRUE(cv::imwrite((dir / "a4.png").string(), bgra));
  EXPECT_EQ(decode_image((dir / "a4.png").string()).pixels, (std::vector<uint8_t>{30, 20, 10}));
}

TEST(DataDecode, JpegDecodesCloseToSource) {
  const auto dir = temp_dir("decode_jpg");
  const RgbImage img = random_image(40, 60, 3);
  const auto path = (dir / "a.jpg").string();
  write_image(path, img, 98);
  const RgbImage back = decode_image(path);
  ASSERT_EQ(back.pixels.size(), img.pixels.size());
  double err = 0;
  for (size_t i = 0; i < img.pixels.size(); ++i) err += std::abs(back.pixels[i] - img.pixels[i]);
  EXPECT_LT(err / static_cast<double>(img.pixels.size()), 8.0);  // lossy, same orientation/order
}

// PIL's Image.open does not apply EXIF orientation (the reference never calls exif_transpose);
// OpenCV's imread does unless told not to. A JPEG tagged "rotate 90" must keep its stored shape.
TEST(DataDecode, ExifOrientationIsIgnoredAsPil) {
  const auto dir = temp_dir("decode_exif");
  const auto plain = (dir / "plain.jpg").string();
  write_image(plain, random_image(20, 40, 6));
  std::ifstream in(plain, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // APP1 "Exif": little-endian TIFF header, one IFD entry: Orientation (0x0112), SHORT, 1, 6.
  const unsigned char app1[] = {0xFF, 0xE1, 0x00, 0x22, 'E',  'x',  'i',  'f',  0,    0,
                                'I',  'I',  0x2A, 0x00, 0x08, 0x00, 0x00, 0x00, 0x01, 0x00,
                                0x12, 0x01, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x06, 0x00,
                                0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
  bytes.insert(2, reinterpret_cast<const char*>(app1), sizeof(app1));
  const auto tagged = (dir / "tagged.jpg").string();
  std::ofstream(tagged, std::ios::binary) << bytes;
  ASSERT_EQ(cv::imread(tagged, cv::IMREAD_COLOR).rows, 40) << "fixture: OpenCV should rotate it";
  const RgbImage img = decode_image(tagged);
  EXPECT_EQ(img.height, 20);
  EXPECT_EQ(img.width, 40);
  EXPECT_EQ(img.pixels, decode_image(plain).pixels);
}

TEST(DataDecode, MissingAndCorruptFilesAreNamed) {
  const auto dir = temp_dir("decode_bad");
  const auto missing = (dir / "nope.jpg").string();
  std::string msg = error_of([&] { decode_image(missing); });
  EXPECT_NE(msg.find(missing), std::string::npos) << msg;
  EXPECT_NE(msg.find("not found"), std::string::npos) << msg;

  const auto garbage = (dir / "garbage.jpg").string();
  std::ofstream(garbage, std::ios::binary) << "this is not an image at all";
  msg = error_of([&] { decode_image(garbage); });
  EXPECT_NE(msg.find(garbage), std::string::npos) << msg;
  EXPECT_NE(msg.find("corrupt"), std::string::npos) << msg;

  const auto empty = (dir / "empty.png").string();
  std::ofstream(empty, std::ios::binary).close();
  msg = error_of([&] { decode_image(empty); });
  EXPECT_NE(msg.find("corrupt"), std::string::npos) << msg;

  // A JPEG cut in half (libjpeg alone would decode it with grey rows; PIL refuses it).
  const auto full = (dir / "full.jpg").string();
  write_image(full, random_image(64, 64, 4));
  std::ifstream in(full, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto cut = (dir / "cut.jpg").string();
  std::ofstream(cut, std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  msg = error_of([&] { decode_image(cut); });
  EXPECT_NE(msg.find(cut), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;

  // A JPEG whose APP1 segment holds an EXIF-style thumbnail (a whole JPEG with its own FF D9):
  // whole, it decodes as without the thumbnail; cut in its scan, it is still truncated.
  {
    const auto thumb_path = (dir / "thumb.jpg").string();
    write_image(thumb_path, random_image(8, 8, 9));
    std::ifstream tin(thumb_path, std::ios::binary);
    const std::string thumb((std::istreambuf_iterator<char>(tin)), std::istreambuf_iterator<char>());
    const std::string payload = std::string("Exif\0\0", 6) + thumb;
    const size_t length = payload.size() + 2;
    const std::string app1 = std::string("\xFF\xE1") + static_cast<char>(length >> 8) + static_cast<char>(length & 0xFF);
    const std::string with_thumb = bytes.substr(0, 2) + app1 + payload + bytes.substr(2);
    const auto whole = (dir / "thumb_whole.jpg").string();
    std::ofstream(whole, std::ios::binary) << with_thumb;
    EXPECT_EQ(decode_image(whole).pixels, decode_image(full).pixels);
    const auto thumb_cut = (dir / "thumb_cut.jpg").string();
    const size_t main_start = 2 + app1.size() + payload.size();
    std::ofstream(thumb_cut, std::ios::binary) << with_thumb.substr(0, main_start + (with_thumb.size() - main_start) / 2);
    msg = error_of([&] { decode_image(thumb_cut); });
    EXPECT_NE(msg.find(thumb_cut), std::string::npos) << msg;
    EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
  }

  // A PNG cut in half.
  const auto png = (dir / "full.png").string();
  write_image(png, random_image(64, 64, 5));
  std::ifstream pin(png, std::ios::binary);
  std::string pbytes((std::istreambuf_iterator<char>(pin)), std::istreambuf_iterator<char>());
  const auto pcut = (dir / "cut.png").string();
  std::ofstream(pcut, std::ios::binary) << pbytes.substr(0, pbytes.size() / 2);
  msg = error_of([&] { decode_image(pcut); });
  EXPECT_NE(msg.find("corrupt"), std::string::npos) << msg;

  EXPECT_THROW(decode_image(dir.string()), Error);  // a directory
}

// Writes n images of assorted sizes (PNG and JPEG) and a split listing them.
Split write_images(const fs::path& dir, int n) {
  Split split;
  split.file = (dir / "split.txt").string();
  for (int i = 0; i < n; ++i) {
    const std::string rel = "img/" + std::to_string(i) + (i % 3 == 0 ? ".png" : ".jpg");
    fs::create_directories(dir / "img");
    write_image((dir / rel).string(), random_image(20 + 7 * (i % 5), 30 + 11 * (i % 4), 100 + i));
    split.entries.push_back({rel, {i % 3}, i + 1});
  }
  return split;
}

TEST(DataLoad, ParallelEqualsSequentialAndSingleDecodes) {
  const auto dir = temp_dir("load_par");
  const Split split = write_images(dir, 23);
  const ImageSet seq = load_images(dir.string(), split, 16, 1);
  const ImageSet par = load_images(dir.string(), split, 16, 4);
  const ImageSet all = load_images(dir.string(), split, 16, 0);
  EXPECT_EQ(seq.count, 23);
  EXPECT_EQ(seq.size, 16);
  ASSERT_EQ(seq.bytes(), 23u * 16 * 16 * 3);
  const std::vector<uint8_t> seq_pixels(seq.data(), seq.data() + seq.bytes());
  EXPECT_EQ(std::vector<uint8_t>(par.data(), par.data() + par.bytes()), seq_pixels);
  EXPECT_EQ(std::vector<uint8_t>(all.data(), all.data() + all.bytes()), seq_pixels);
  for (int i : {0, 7, 22}) {
    const RgbImage one = resize_bilinear_antialias(
        decode_image((dir / split.entries[i].path).string()), 16, 16);
    EXPECT_TRUE(std::equal(one.pixels.begin(), one.pixels.end(), seq.image(i))) << i;
  }
}

TEST(DataLoad, FirstFailingImageInSplitOrderIsReported) {
  const auto dir = temp_dir("load_bad");
  Split split = write_images(dir, 40);
  // Entry 9 is corrupt, entries 5 and 30 missing: the error names entry 5, on any thread count.
  std::ofstream((dir / split.entries[9].path), std::ios::binary) << "junk";
  split.entries[5].path = "img/missing5.jpg";
  split.entries[30].path = "img/missing30.jpg";
  for (int threads : {1, 3, 8}) {
    const std::string msg = error_of([&] { load_images(dir.string(), split, 8, threads); });
    EXPECT_NE(msg.find("missing5.jpg"), std::string::npos) << msg;
    EXPECT_NE(msg.find("not found"), std::string::npos) << msg;
    EXPECT_NE(msg.find("line 6 of " + split.file), std::string::npos) << msg;
  }
  split.entries[5].path = split.entries[4].path;
  const std::string msg = error_of([&] { load_images(dir.string(), split, 8, 4); });
  EXPECT_NE(msg.find(split.entries[9].path), std::string::npos) << msg;
  EXPECT_NE(msg.find("corrupt"), std::string::npos) << msg;
}

// Not a timing assertion: prints decode + resize throughput for 500x375 JPEGs (VOC's typical
// size) to 224x224, one thread, and with all cores.
TEST(DataBench, DecodeResizeThroughput500x375Jpeg) {
  const auto dir = temp_dir("bench");
  Split split;
  split.file = "bench";
  const int n = 48;
  fs::create_directories(dir / "img");
  for (int i = 0; i < n; ++i) {
    const std::string rel = "img/" + std::to_string(i) + ".jpg";
    write_image((dir / rel).string(), random_image(375, 500, 1000 + i), 90);
    split.entries.push_back({rel, {0}, i + 1});
  }
  load_images(dir.string(), split, 224, 1);  // warm the page cache
  using clock = std::chrono::steady_clock;
  auto t0 = clock::now();
  const int reps = 3;
  for (int r = 0; r < reps; ++r) load_images(dir.string(), split, 224, 1);
  const double one = std::chrono::duration<double>(clock::now() - t0).count();
  // Decode alone, to split the cost.
  t0 = clock::now();
  for (const auto& e : split.entries) decode_image((dir / e.path).string());
  const double decode = std::chrono::duration<double>(clock::now() - t0).count();
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  t0 = clock::now();
  for (int r = 0; r < reps; ++r) load_images(dir.string(), split, 224, 0);
  const double all = std::chrono::duration<double>(clock::now() - t0).count();
  fs::remove_all(dir);
  std::printf("[bench] decode+resize 500x375 JPEG -> 224x224: %.1f images/s on 1 thread "
              "(decode alone %.1f images/s); %.1f images/s on %d threads (%.1f per core)\n",
              reps * n / one, n / decode, reps * n / all, cores, reps * n / all / cores);
  SUCCEED();
}

}  // namespace
}  // namespace lmsweep
