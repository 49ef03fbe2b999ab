#include "data/image_cache_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <set>

#include "common/error.h"

namespace lmsweep {
namespace fs = std::filesystem;

namespace {

constexpr char kMagic[8] = {'L', 'M', 'S', 'W', 'I', 'M', 'G', '\0'};

// 64 bytes, so the pixels start aligned. Native byte order: the file never leaves the node.
struct Header {
  char magic[8];
  uint32_t format_version;
  uint32_t resize_version;
  int64_t count;
  int64_t size;
  uint64_t key;
  uint64_t pixel_bytes;
  uint8_t reserved[16];
};
static_assert(sizeof(Header) == 64, "the cache file header is 64 bytes");

// FNV-1a 64.
struct Hasher {
  uint64_t h = 1469598103934665603ull;
  void bytes(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    for (size_t i = 0; i < n; ++i) h = (h ^ b[i]) * 1099511628211ull;
  }
  void text(const std::string& s) {
    const uint64_t n = s.size();
    bytes(&n, sizeof n);  // length first: ("ab","c") and ("a","bc") differ
    bytes(s.data(), s.size());
  }
  template <typename T>
  void value(T v) { bytes(&v, sizeof v); }
};

std::string errno_text(int err) { return std::strerror(err); }

// An open file descriptor, closed on destruction (which also releases an flock on it).
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { if (fd_ >= 0) ::close(fd_); }
  int get() const { return fd_; }
  bool ok() const { return fd_ >= 0; }

 private:
  int fd_;
};

// A mapping of a whole file, unmapped on destruction: what a mapped ImageSet's owner holds.
class Mapping {
 public:
  Mapping(void* addr, size_t length) : addr_(addr), length_(length) {}
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  ~Mapping() { ::munmap(addr_, length_); }
  const uint8_t* data() const { return static_cast<const uint8_t*>(addr_); }
  uint8_t* mutable_data() { return static_cast<uint8_t*>(addr_); }

 private:
  void* addr_;
  size_t length_;
};

uint64_t pixel_bytes(int64_t count, int64_t size) { return static_cast<uint64_t>(count * size * size * 3); }

Header make_header(uint64_t key, int64_t count, int64_t size) {
  Header h{};
  std::memcpy(h.magic, kMagic, sizeof kMagic);
  h.format_version = kImageCacheFormatVersion;
  h.resize_version = kImageResizeVersion;
  h.count = count;
  h.size = size;
  h.key = key;
  h.pixel_bytes = pixel_bytes(count, size);
  return h;
}

// The images of a valid cache file, mapped read-only; nullptr when the file is missing or does
// not match (wrong size for its header, magic, versions, key, count or image size).
std::shared_ptr<const ImageSet> try_map(const std::string& path, uint64_t key, int64_t count, int64_t size) {
  Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.ok()) return nullptr;
  struct stat st{};
  Header h{};
  if (::fstat(fd.get(), &st) != 0 || ::pread(fd.get(), &h, sizeof h, 0) != static_cast<ssize_t>(sizeof h))
    return nullptr;
  const Header want = make_header(key, count, size);
  if (std::memcmp(h.magic, want.magic, sizeof h.magic) != 0 || h.format_version != want.format_version ||
      h.resize_version != want.resize_version || h.key != key || h.count != count || h.size != size ||
      h.pixel_bytes != want.pixel_bytes || static_cast<uint64_t>(st.st_size) != sizeof(Header) + h.pixel_bytes)
    return nullptr;
  const auto length = static_cast<size_t>(st.st_size);
  void* addr = ::mmap(nullptr, length, PROT_READ, MAP_SHARED, fd.get(), 0);
  if (addr == MAP_FAILED) return nullptr;
  auto mapping = std::make_shared<const Mapping>(addr, length);
  const uint8_t* pixels = mapping->data() + sizeof(Header);
  return std::make_shared<const ImageSet>(count, size, pixels, std::move(mapping));
}

// Decodes into `tmp` (space reserved first, so a full disk is an error here and never a SIGBUS
// while writing through the mapping), then renames it to `path`. Returns "" or why it could not
// write the file; rethrows a decoding error after removing `tmp`.
std::string write_cache_file(const std::string& path, const std::string& tmp, uint64_t key, const std::string& data_root,
                             const Split& split, int64_t size, int threads) {
  const auto count = static_cast<int64_t>(split.entries.size());
  const size_t length = sizeof(Header) + pixel_bytes(count, size);
  Fd fd(::open(tmp.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.ok()) return fmt::format("cannot create '{}': {}", tmp, errno_text(errno));
  auto fail = [&](const std::string& what, int err) {
    ::unlink(tmp.c_str());
    return fmt::format("{} '{}': {}", what, tmp, errno_text(err));
  };
  if (const int err = ::posix_fallocate(fd.get(), 0, static_cast<off_t>(length)); err != 0)
    return fail("cannot reserve " + std::to_string(length) + " bytes for", err);
  void* addr = ::mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (addr == MAP_FAILED) return fail("cannot map", errno);
  {
    Mapping mapping(addr, length);
    try {
      load_images_into(data_root, split, size, threads, mapping.mutable_data() + sizeof(Header));
    } catch (...) {
      ::unlink(tmp.c_str());
      throw;
    }
    const Header h = make_header(key, count, size);
    std::memcpy(mapping.mutable_data(), &h, sizeof h);
  }
  // Durable before it becomes visible: after a crash the name holds a whole file or nothing.
  if (::fdatasync(fd.get()) != 0) return fail("cannot write", errno);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return fail("cannot rename", errno);
  return "";
}

// One warning line per folder and process.
void warn_once(const std::string& dir, const std::string& why) {
  static std::mutex mutex;
  static std::set<std::string> warned;
  std::lock_guard<std::mutex> lock(mutex);
  if (!warned.insert(dir).second) return;
  std::cerr << fmt::format("lmsweep: warning: image cache folder '{}' not usable ({}); every process decodes its own "
                           "copy of the images (pass --cache-dir with a writable folder, or --cache-dir none)\n",
                           dir, why)
            << std::flush;
}

std::shared_ptr<const ImageSet> decode_private(const std::string& data_root, const Split& split, int64_t size,
                                               int threads, const ImageCacheOptions& options, CacheReport& report) {
  if (options.before_decode) options.before_decode();
  report.decoded = true;
  report.mapped = false;
  return std::make_shared<const ImageSet>(load_images(data_root, split, size, threads));
}

// Takes the lock (blocking), and maps or writes then maps the cache file. nullptr + warning:
// the folder is not usable.
std::shared_ptr<const ImageSet> load_locked(const std::string& data_root, const Split& split, int64_t size,
                                            int threads, const ImageCacheOptions& options, uint64_t key,
                                            CacheReport& report) {
  const auto count = static_cast<int64_t>(split.entries.size());
  std::error_code ec;
  fs::create_directories(options.dir, ec);
  const std::string lock_path = fs::path(report.file).replace_extension(".lock").string();
  Fd lock(::open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666));
  if (!lock.ok()) {
    report.warning = fmt::format("cannot create '{}': {}", lock_path, errno_text(errno));
    return nullptr;
  }
  if (::flock(lock.get(), LOCK_EX | LOCK_NB) != 0) {
    report.waited = true;  // another process is decoding this split
    int rc;
    while ((rc = ::flock(lock.get(), LOCK_EX)) != 0 && errno == EINTR) {}
    if (rc != 0) {
      report.warning = fmt::format("cannot lock '{}': {}", lock_path, errno_text(errno));
      return nullptr;
    }
  }
  if (auto set = try_map(report.file, key, count, size)) return set;  // written while we waited
  if (options.before_decode) options.before_decode();
  report.decoded = true;
  const std::string why = write_cache_file(report.file, report.file + ".tmp", key, data_root, split, size, threads);
  if (!why.empty()) {
    report.warning = why;
    return nullptr;
  }
  if (auto set = try_map(report.file, key, count, size)) return set;
  report.warning = fmt::format("cannot map '{}' just written", report.file);
  return nullptr;
}

}  // namespace

std::string default_image_cache_dir() {
  if (const char* tmp = std::getenv("TMPDIR"); tmp && *tmp) return tmp;
  std::error_code ec;
  if (fs::is_directory("/dev/shm", ec) && ::access("/dev/shm", W_OK | X_OK) == 0) return "/dev/shm";
  return "/tmp";
}

std::string resolve_image_cache_dir(const std::string& flag) {
  if (flag == "auto") return default_image_cache_dir();
  if (flag == "none") return "";
  return flag;
}

uint64_t image_cache_key(const std::string& data_root, const Split& split, int64_t size) {
  Hasher h;
  h.text("lmsweep-images");
  h.value(kImageResizeVersion);
  h.value(size);
  std::error_code ec;
  fs::path root = fs::weakly_canonical(fs::absolute(data_root, ec), ec);
  if (ec) root = fs::path(data_root).lexically_normal();
  h.text(root.string());
  h.value(static_cast<uint64_t>(split.entries.size()));
  for (const SplitEntry& e : split.entries) {
    const std::string path = (root / e.path).string();
    struct stat st{};
    LMSWEEP_CHECK(::stat(path.c_str(), &st) == 0, "image '{}' (line {} of {}): {}", path, e.line, split.file,
                  errno_text(errno));
    h.text(e.path);
    h.value(static_cast<int64_t>(st.st_size));
    h.value(static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec);
  }
  return h.h;
}

std::string image_cache_path(const std::string& dir, uint64_t key) {
  return (fs::path(dir) / fmt::format("lmsweep-images-{:016x}.u8", key)).string();
}

std::shared_ptr<const ImageSet> load_images_shared(const std::string& data_root, const Split& split, int64_t size,
                                                   int threads, const ImageCacheOptions& options,
                                                   CacheReport* report_out) {
  const auto t0 = std::chrono::steady_clock::now();
  CacheReport report;
  std::shared_ptr<const ImageSet> set;
  uint64_t key = 0;
  bool keyed = !options.dir.empty() && size > 0;
  if (keyed) {
    try {
      key = image_cache_key(data_root, split, size);
    } catch (const Error&) {
      keyed = false;  // a missing image: load_images below names it with its split line
    }
  }
  if (keyed) {
    report.file = image_cache_path(options.dir, key);
    set = try_map(report.file, key, static_cast<int64_t>(split.entries.size()), size);
    if (!set) set = load_locked(data_root, split, size, threads, options, key, report);
    if (!set) warn_once(options.dir, report.warning);
  }
  report.mapped = set != nullptr;
  if (!set) set = decode_private(data_root, split, size, threads, options, report);
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  if (report_out) *report_out = report;
  return set;
}

std::string describe(const CacheReport& report, const ImageSet& images) {
  const std::string what = fmt::format("{} images of {} px ({:.1f} MB)", images.count, images.size,
                                       static_cast<double>(images.bytes()) / 1e6);
  if (report.mapped && report.decoded)
    return fmt::format("images: decoded {} into {} in {:.1f} s", what, report.file, report.seconds);
  if (report.mapped) return fmt::format("images: mapped {} from {} in {:.2f} s", what, report.file, report.seconds);
  return fmt::format("images: decoded {} in {:.1f} s (not shared{})", what, report.seconds,
                     report.file.empty() ? ": --cache-dir none" : ": cache folder not usable");
}

}  // namespace lmsweep
