// The node-shared decoded-image cache (src/data/image_cache_file.h), torch-free: the resident
// image memory of a node running 1, 2, 4 ... ranks, and their time to the first image, with a
// per-process decode (--cache-dir none) and with the shared cache, cold (no cache file yet)
// and warm (the file of an earlier run).
//
// Writes the synthetic dataset (--images training images of --image-size px) to a temporary
// folder; for each rank count, forks that many processes which start together, each loads the
// training split at --size px (load_images_shared, --threads threads each) and reads every page
// of it (as an epoch's index_select does). Image memory = the PSS (/proc/PID/smaps_rollup) summed
// over the ranks after the load, less the same sum before it: PSS divides a page shared by k
// processes by k, where RSS counts it k times. Prints one JSON line per configuration and a
// table; no assertions.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "bench/bench_common.h"
#include "common/error.h"
#include "data/dataset.h"
#include "data/image.h"
#include "data/image_cache_file.h"
#include "data/synthetic.h"

namespace {

using namespace lmsweep;
namespace fs = std::filesystem;

// kB of the "Pss:" and "Rss:" lines of /proc/PID/smaps_rollup.
struct Memory {
  int64_t pss_kb = 0, rss_kb = 0;
};

Memory memory_of(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/smaps_rollup", pid));
  LMSWEEP_CHECK(in.good(), "cannot read /proc/{}/smaps_rollup (Linux 4.14 or later needed)", pid);
  Memory m;
  for (std::string line; std::getline(in, line);) {
    std::istringstream fields(line);
    std::string key;
    int64_t kb = 0;
    fields >> key >> kb;
    if (key == "Pss:") m.pss_kb = kb;
    if (key == "Rss:") m.rss_kb = kb;
  }
  return m;
}

// What a rank sends back through the pipe (one write of a few bytes: atomic).
struct RankResult {
  double seconds = 0;  // load + reading every page
  int32_t decoded = 0, mapped = 0, failed = 0;
  uint64_t checksum = 0;
};

struct Run {
  std::string mode;  // none | cold | warm
  int ranks = 0;
  double pixel_pss_mb = 0, pixel_rss_mb = 0, seconds = 0;
  int decodes = 0, mapped = 0;
};

RankResult rank_main(const std::string& root, const Split& split, int64_t size, int threads, const std::string& dir) {
  RankResult r;
  bench::Timer t;
  try {
    ImageCacheOptions options;
    options.dir = dir;
    CacheReport report;
    const auto set = load_images_shared(root, split, size, threads, options, &report);
    for (size_t i = 0; i < set->bytes(); i += 4096) r.checksum += set->data()[i];  // fault every page in
    r.seconds = t.seconds();
    r.decoded = report.decoded;
    r.mapped = report.mapped;
    // Keep the set alive until the parent has measured: leak it on purpose (the process ends).
    new std::shared_ptr<const ImageSet>(set);
  } catch (const std::exception& e) {
    std::cerr << "rank: " << e.what() << std::endl;
    r.failed = 1;
  }
  return r;
}

// Forks `ranks` processes that start together; measures them after they have loaded.
Run run_ranks(const std::string& mode, int ranks, const std::string& root, const Split& split, int64_t size,
              int threads, const std::string& dir) {
  int go[2], done[2], release[2];
  LMSWEEP_CHECK(::pipe(go) == 0 && ::pipe(done) == 0 && ::pipe(release) == 0, "pipe: {}", std::strerror(errno));
  std::vector<pid_t> pids;
  for (int k = 0; k < ranks; ++k) {
    const pid_t pid = ::fork();
    LMSWEEP_CHECK(pid >= 0, "fork: {}", std::strerror(errno));
    if (pid == 0) {
      ::close(go[1]);
      ::close(done[0]);
      ::close(release[1]);
      char c;
      (void)::read(go[0], &c, 1);  // EOF when the parent closes its end
      const RankResult r = rank_main(root, split, size, threads, dir);
      (void)::write(done[1], &r, sizeof r);
      (void)::read(release[0], &c, 1);
      ::_exit(0);
    }
    pids.push_back(pid);
  }
  ::close(go[0]);
  ::close(done[1]);
  ::close(release[0]);
  ::usleep(200000);  // let every child reach its read()
  int64_t pss0 = 0, rss0 = 0;
  for (pid_t p : pids) {
    const Memory m = memory_of(p);
    pss0 += m.pss_kb;
    rss0 += m.rss_kb;
  }
  ::close(go[1]);
  Run run{mode, ranks};
  for (int k = 0; k < ranks; ++k) {
    RankResult r;
    LMSWEEP_CHECK(::read(done[0], &r, sizeof r) == static_cast<ssize_t>(sizeof r), "a rank died");
    LMSWEEP_CHECK(!r.failed, "a rank failed (see its error above)");
    run.seconds = std::max(run.seconds, r.seconds);
    run.decodes += r.decoded;
    run.mapped += r.mapped;
  }
  int64_t pss1 = 0, rss1 = 0;
  for (pid_t p : pids) {
    const Memory m = memory_of(p);
    pss1 += m.pss_kb;
    rss1 += m.rss_kb;
  }
  ::close(release[1]);
  for (pid_t p : pids) ::waitpid(p, nullptr, 0);
  ::close(done[0]);
  run.pixel_pss_mb = static_cast<double>(pss1 - pss0) / 1024.0;
  run.pixel_rss_mb = static_cast<double>(rss1 - rss0) / 1024.0;
  return run;
}

void remove_cache_files(const std::string& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().filename().string().rfind("lmsweep-images-", 0) == 0) fs::remove(e.path(), ec);
}

int run(int argc, char** argv) {
  bench::cpu_monitor();
  bench::Args args("bench_image_cache",
                   "Image memory (summed PSS) and time to the first image of N ranks on a node, with and without "
                   "the node-shared decoded-image cache.",
                   {{"images", {"1000", "training images of the synthetic set"}},
                    {"image-size", {"224", "side of the written synthetic images"}},
                    {"size", {"224", "side the ranks load them at (the model's resolution)"}},
                    {"ranks", {"1,2,4", "rank counts, comma-separated"}},
                    {"threads", {"1", "decoding threads per rank"}},
                    {"cache-dir", {"", "folder of the cache files (default: a fresh folder in $TMPDIR, else "
                                       "/dev/shm, else /tmp, removed at the end)"}},
                    {"keep", {"", "keep the temporary folders", true}}});
  if (!args.parse(argc, argv)) return 0;
  const int64_t images = args.integer("images", 1), image_size = args.integer("image-size", 16);
  const int64_t size = args.integer("size", 1);
  const int threads = static_cast<int>(args.integer("threads", 0));
  std::vector<int> rank_counts;
  {
    std::istringstream in(args.str("ranks"));
    for (std::string tok; std::getline(in, tok, ',');) rank_counts.push_back(std::stoi(tok));
  }
  bench::TempDir data("bench_image_cache");
  data.keep(args.flag("keep"));
  SyntheticOptions so;
  so.out_dir = data.path().string();
  so.train_images = images;
  so.test_images = 10;
  so.image_size = image_size;
  const SyntheticDataset ds = write_synthetic_dataset(so);
  const Split split = read_split(ds.train_split, so.num_classes);
  std::string dir = args.str("cache-dir");
  const bool own_dir = dir.empty();
  if (own_dir) dir = (fs::path(default_image_cache_dir()) / fmt::format("lmsweep_bench_cache_{}", ::getpid())).string();
  fs::create_directories(dir);
  std::cerr << fmt::format("bench_image_cache: {} images of {} px loaded at {} px ({:.1f} MB), cache in {}", images,
                           image_size, size, static_cast<double>(images * size * size * 3) / (1 << 20), dir)
            << std::endl;

  std::vector<Run> runs;
  for (int n : rank_counts) {
    runs.push_back(run_ranks("none", n, ds.data_root, split, size, threads, ""));
    remove_cache_files(dir);
    runs.push_back(run_ranks("cold", n, ds.data_root, split, size, threads, dir));
    runs.push_back(run_ranks("warm", n, ds.data_root, split, size, threads, dir));
  }
  if (own_dir && !args.flag("keep")) fs::remove_all(dir);

  const double one = runs.front().pixel_pss_mb;  // 1 rank, per-process decode (when --ranks starts at 1)
  std::cout << fmt::format("{:>5}  {:<22} {:>14} {:>9} {:>12} {:>13} {:>7}\n", "ranks", "cache", "image PSS MB",
                           "x 1 rank", "sum RSS MB", "first image s", "decodes");
  for (const Run& r : runs) {
    const std::string mode = r.mode == "none" ? "none (per process)" : "shared, " + r.mode;
    bench::emit({{"bench", "image_cache"}, {"ranks", r.ranks}, {"cache", r.mode}, {"images", images}, {"size", size},
                 {"threads_per_rank", threads}, {"image_pss_mb", r.pixel_pss_mb}, {"ratio_to_one_rank", r.pixel_pss_mb / one},
                 {"sum_rss_mb", r.pixel_rss_mb}, {"first_image_s", r.seconds}, {"decodes", r.decodes}});
    std::cout << fmt::format("{:>5}  {:<22} {:>14.1f} {:>9.2f} {:>12.1f} {:>13.3f} {:>7}\n", r.ranks, mode,
                             r.pixel_pss_mb, r.pixel_pss_mb / one, r.pixel_rss_mb, r.seconds, r.decodes);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return lmsweep::bench::guarded_main(run, argc, argv); }
