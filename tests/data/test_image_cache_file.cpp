// The node-shared decoded-image cache (data/image_cache_file.h): written once, mapped after;
// a changed image, split or a damaged file decodes again; two processes decode once; an
// unusable folder falls back to a per-process decode.
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <thread>

#include <gtest/gtest.h>

#include "common/error.h"
#include "data/dataset.h"
#include "data/image.h"
#include "data/image_cache_file.h"
#include "support/shared_data.h"

namespace lmsweep {
namespace {

namespace fs = std::filesystem;

RgbImage noise(int64_t h, int64_t w, uint32_t seed) {
  RgbImage img;
  img.height = h;
  img.width = w;
  std::mt19937 rng(seed);
  img.pixels.resize(static_cast<size_t>(h * w * 3));
  for (auto& p : img.pixels) p = static_cast<uint8_t>(rng() % 256);
  return img;
}

std::vector<uint8_t> bytes_of(const ImageSet& set) { return {set.data(), set.data() + set.bytes()}; }

class ImageCacheFile : public ::testing::Test {
 protected:
  static constexpr int64_t kSize = 16;

  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = testing::temp_dir(std::string("image_cache_") + info->name());
    fs::create_directories(dir_ / "img");
    for (int i = 0; i < kImages; ++i) write_image(image_path(i), noise(20 + 3 * i, 28 - 2 * i, 10 + i));
    write_split({0, 1, 2, 3, 4, 5}, 0);
    options_.dir = (dir_ / "cache").string();
  }
  void TearDown() override {
    if (!HasFailure()) fs::remove_all(dir_);
  }

  std::string image_path(int i) const { return (dir_ / "img" / (std::to_string(i) + ".png")).string(); }
  // The split file lists images `order`, each with label `label`.
  void write_split(const std::vector<int>& order, int label) {
    std::ofstream out(dir_ / "split.txt", std::ios::trunc);
    for (int i : order) out << "img/" << i << ".png " << label << "\n";
  }
  Split split() const { return read_split((dir_ / "split.txt").string(), 3); }
  std::shared_ptr<const ImageSet> load(CacheReport* report) const {
    return load_images_shared(dir_.string(), split(), kSize, 1, options_, report);
  }
  std::vector<uint8_t> expected() const { return bytes_of(load_images(dir_.string(), split(), kSize, 1)); }
  size_t cache_files() const {
    size_t n = 0;
    if (fs::exists(dir_ / "cache"))
      for (const auto& e : fs::directory_iterator(dir_ / "cache")) n += e.path().extension() == ".u8";
    return n;
  }

  static constexpr int kImages = 6;
  fs::path dir_;
  ImageCacheOptions options_;
};

TEST_F(ImageCacheFile, FirstLoadDecodesAndWritesSecondMaps) {
  CacheReport first, second;
  const auto a = load(&first);
  EXPECT_TRUE(first.decoded);
  EXPECT_TRUE(first.mapped);  // the writer maps its own file: one copy on the node
  EXPECT_TRUE(first.warning.empty()) << first.warning;
  EXPECT_TRUE(std::regex_match(fs::path(first.file).filename().string(),
                               std::regex("lmsweep-images-[0-9a-f]{16}\\.u8")))
      << first.file;
  EXPECT_EQ(fs::path(first.file).parent_path(), dir_ / "cache");
  EXPECT_EQ(fs::file_size(first.file), 64 + a->bytes());
  EXPECT_FALSE(fs::exists(first.file + ".tmp"));
  const auto b = load(&second);
  EXPECT_FALSE(second.decoded);
  EXPECT_TRUE(second.mapped);
  EXPECT_FALSE(second.waited);
  EXPECT_EQ(second.file, first.file);
  EXPECT_EQ(b->count, kImages);
  EXPECT_EQ(b->size, kSize);
  EXPECT_EQ(bytes_of(*a), expected());
  EXPECT_EQ(bytes_of(*b), expected());
  EXPECT_EQ(cache_files(), 1u);
  EXPECT_NE(describe(second, *b).find("images: mapped 6 images of 16 px"), std::string::npos) << describe(second, *b);
  EXPECT_NE(describe(second, *b).find(first.file), std::string::npos);
}

TEST_F(ImageCacheFile, ChangedImageIsDecodedAgain) {
  CacheReport first, second;
  const auto old_pixels = bytes_of(*load(&first));
  // Same dimensions, other pixels; the modification time set explicitly so that it changes
  // whatever the file system's timestamp resolution.
  write_image(image_path(2), noise(26, 24, 999));
  fs::last_write_time(image_path(2), fs::last_write_time(image_path(2)) + std::chrono::seconds(10));
  const auto now = load(&second);
  EXPECT_TRUE(second.decoded);
  EXPECT_NE(second.file, first.file);
  EXPECT_EQ(bytes_of(*now), expected());
  EXPECT_NE(bytes_of(*now), old_pixels);
}

TEST_F(ImageCacheFile, TouchedImageIsDecodedAgain) {
  CacheReport first, second;
  load(&first);
  fs::last_write_time(image_path(0), fs::last_write_time(image_path(0)) - std::chrono::hours(1));
  load(&second);
  EXPECT_TRUE(second.decoded);
  EXPECT_NE(second.file, first.file);
}

TEST_F(ImageCacheFile, ChangedSplitIsDecodedAgain) {
  CacheReport first, second, third;
  load(&first);
  write_split({5, 4, 3, 2, 1}, 0);  // other images, other order
  const auto now = load(&second);
  EXPECT_TRUE(second.decoded);
  EXPECT_NE(second.file, first.file);
  EXPECT_EQ(now->count, 5);
  EXPECT_EQ(bytes_of(*now), expected());
  // The pixels depend on the image paths only: other labels, same file.
  write_split({5, 4, 3, 2, 1}, 2);
  load(&third);
  EXPECT_FALSE(third.decoded);
  EXPECT_EQ(third.file, second.file);
}

TEST_F(ImageCacheFile, OtherSizeOrRootIsAnotherFile) {
  const Split s = split();
  const uint64_t key = image_cache_key(dir_.string(), s, kSize);
  EXPECT_EQ(image_cache_key(dir_.string(), s, kSize), key);
  EXPECT_NE(image_cache_key(dir_.string(), s, kSize + 1), key);
  fs::create_directories(dir_ / "copy");
  fs::copy(dir_ / "img", dir_ / "copy" / "img", fs::copy_options::recursive);
  for (int i = 0; i < kImages; ++i)
    fs::last_write_time(dir_ / "copy" / "img" / (std::to_string(i) + ".png"), fs::last_write_time(image_path(i)));
  EXPECT_NE(image_cache_key((dir_ / "copy").string(), s, kSize), key);
  // A relative spelling of the same root is the same key.
  const auto cwd = fs::current_path();
  fs::current_path(dir_);
  const uint64_t relative = image_cache_key(".", s, kSize);
  fs::current_path(cwd);
  EXPECT_EQ(relative, key);
}

TEST_F(ImageCacheFile, TruncatedFileIsDecodedAgain) {
  CacheReport first, second, third;
  std::string file;
  {
    load(&first);  // released at once: truncating a mapped file would SIGBUS its readers
    file = first.file;
  }
  const auto full = fs::file_size(file);
  fs::resize_file(file, full / 2);
  const auto now = load(&second);
  EXPECT_TRUE(second.decoded);
  EXPECT_EQ(second.file, file);
  EXPECT_EQ(fs::file_size(file), full);
  EXPECT_EQ(bytes_of(*now), expected());
  load(&third);
  EXPECT_FALSE(third.decoded);
  // Longer than its header says.
  { std::ofstream(file, std::ios::app | std::ios::binary) << "x"; }
  load(&third);
  EXPECT_TRUE(third.decoded);
  EXPECT_EQ(fs::file_size(file), full);
}

TEST_F(ImageCacheFile, CorruptHeaderIsDecodedAgain) {
  CacheReport first;
  { load(&first); }
  // Offsets in the 64-byte header: magic 0, format version 8, resize version 12, count 16,
  // size 24, key 32, pixel bytes 40.
  for (const int offset : {0, 8, 12, 16, 24, 32, 40}) {
    {
      std::fstream f(first.file, std::ios::in | std::ios::out | std::ios::binary);
      f.seekp(offset);
      f.put('\x7f');
    }
    CacheReport report;
    const auto now = load(&report);
    EXPECT_TRUE(report.decoded) << "header byte " << offset;
    EXPECT_EQ(bytes_of(*now), expected()) << "header byte " << offset;
  }
}

TEST_F(ImageCacheFile, TwoProcessesThatStartTogetherDecodeOnce) {
  const auto want = expected();
  int go[2];
  ASSERT_EQ(::pipe(go), 0);
  std::vector<pid_t> children;
  for (int c = 0; c < 2; ++c) {
    const pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      ::close(go[1]);
      char byte;
      (void)::read(go[0], &byte, 1);  // returns at EOF, when the parent closes its end: both start together
      int code = 0;
      try {
        ImageCacheOptions o = options_;
        o.before_decode = [] { std::this_thread::sleep_for(std::chrono::milliseconds(400)); };
        CacheReport r;
        const auto set = load_images_shared(dir_.string(), split(), kSize, 1, o, &r);
        code = (r.decoded ? 1 : 0) | (r.mapped ? 2 : 0) | (r.waited ? 4 : 0) | (bytes_of(*set) == want ? 8 : 0);
      } catch (...) {
        code = 64;
      }
      ::_exit(code);
    }
    children.push_back(pid);
  }
  ::close(go[0]);
  ::close(go[1]);
  int decodes = 0, waited = 0;
  for (const pid_t pid : children) {
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    const int code = WEXITSTATUS(status);
    ASSERT_NE(code, 64) << "the child threw";
    EXPECT_TRUE(code & 2) << "mapped";
    EXPECT_TRUE(code & 8) << "right pixels";
    decodes += code & 1;
    waited += (code & 4) ? 1 : 0;
  }
  EXPECT_EQ(decodes, 1);  // whatever the timing: the second maps what the first wrote
  EXPECT_LE(waited, 1);
  EXPECT_EQ(cache_files(), 1u);
}

TEST_F(ImageCacheFile, UnusableFolderFallsBackToAPrivateDecode) {
  { std::ofstream(dir_ / "a_file") << "not a folder"; }
  options_.dir = (dir_ / "a_file" / "cache").string();
  ::testing::internal::CaptureStderr();
  CacheReport report, again;
  const auto set = load(&report);
  load(&again);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(report.decoded);
  EXPECT_FALSE(report.mapped);
  EXPECT_FALSE(report.warning.empty());
  EXPECT_EQ(bytes_of(*set), expected());
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;  // one line, not one per load
  EXPECT_NE(err.find("warning"), std::string::npos) << err;
  EXPECT_NE(err.find(options_.dir), std::string::npos) << err;
  EXPECT_NE(describe(report, *set).find("not shared"), std::string::npos);
}

TEST_F(ImageCacheFile, ReadOnlyFolderFallsBackButAnExistingFileIsMapped) {
  if (::geteuid() == 0) GTEST_SKIP() << "root writes into read-only folders";
  fs::create_directories(options_.dir);
  CacheReport written;
  load(&written);
  fs::permissions(options_.dir, fs::perms::owner_read | fs::perms::owner_exec);
  CacheReport mapped;
  load(&mapped);
  EXPECT_FALSE(mapped.decoded);
  EXPECT_TRUE(mapped.mapped);
  write_split({1, 2}, 0);
  ::testing::internal::CaptureStderr();
  CacheReport fallback;
  const auto set = load(&fallback);
  ::testing::internal::GetCapturedStderr();
  fs::permissions(options_.dir, fs::perms::owner_all);
  EXPECT_TRUE(fallback.decoded);
  EXPECT_FALSE(fallback.mapped);
  EXPECT_EQ(bytes_of(*set), expected());
}

TEST_F(ImageCacheFile, OffDecodesInEveryProcessAndWritesNothing) {
  options_.dir = "";
  CacheReport report;
  const auto set = load(&report);
  EXPECT_TRUE(report.decoded);
  EXPECT_FALSE(report.mapped);
  EXPECT_TRUE(report.file.empty());
  EXPECT_TRUE(report.warning.empty());
  EXPECT_EQ(bytes_of(*set), expected());
  EXPECT_FALSE(fs::exists(dir_ / "cache"));
  EXPECT_EQ(resolve_image_cache_dir("none"), "");
  EXPECT_EQ(resolve_image_cache_dir(""), "");
  EXPECT_EQ(resolve_image_cache_dir("/some/dir"), "/some/dir");
  EXPECT_EQ(resolve_image_cache_dir("auto"), default_image_cache_dir());
}

TEST_F(ImageCacheFile, DefaultFolderIsTmpdirThenDevShmThenTmp) {
  const char* saved = std::getenv("TMPDIR");
  const std::string saved_value = saved ? saved : "";
  ::setenv("TMPDIR", "/scratch/job42", 1);
  EXPECT_EQ(default_image_cache_dir(), "/scratch/job42");
  ::unsetenv("TMPDIR");
  const std::string fallback = default_image_cache_dir();
  if (saved) ::setenv("TMPDIR", saved_value.c_str(), 1);
  const bool shm = fs::is_directory("/dev/shm") && ::access("/dev/shm", W_OK) == 0;
  EXPECT_EQ(fallback, shm ? "/dev/shm" : "/tmp");
}

TEST_F(ImageCacheFile, BadImageThrowsAsLoadImagesAndLeavesNoFile) {
  { std::ofstream(image_path(3), std::ios::trunc) << "not a png"; }
  const std::string msg = [&] {
    try {
      load(nullptr);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  }();
  EXPECT_NE(msg.find("3.png"), std::string::npos) << msg;
  EXPECT_NE(msg.find("line 4"), std::string::npos) << msg;
  EXPECT_EQ(cache_files(), 0u);
  for (const auto& e : fs::directory_iterator(dir_ / "cache"))
    EXPECT_EQ(e.path().extension(), ".lock") << e.path();  // no .tmp left behind
  fs::remove(image_path(3));
  try {  // a missing image: load_images' error, with the split's line
    load(nullptr);
    ADD_FAILURE() << "no error for a missing image";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("line 4"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lmsweep
