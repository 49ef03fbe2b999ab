#pragma once
// An output that appears whole or not at all: written into a sibling `<path>.partial-<pid>`
// (a folder or a file), then renamed over `path` by commit(). Destroyed uncommitted (an error
// on the way), it removes what it wrote, so no half-written report or export is left behind.
//
//   StagedOutput out(dir, StagedOutput::Kind::Directory, "--out");
//   write_everything_into(out.path());
//   out.commit();  // replaces a previous `dir` only now
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>

#include "common/error.h"

namespace lmsweep {

class StagedOutput {
 public:
  enum class Kind { Directory, File };

  // what: the option that named the path ("--out"), for messages. Throws lmsweep::Error when
  // `path` is of the other kind or its folder cannot be written.
  StagedOutput(std::string path, Kind kind, std::string what)
      : final_(std::move(path)), kind_(kind), what_(std::move(what)) {
    namespace fs = std::filesystem;
    LMSWEEP_CHECK(!final_.empty(), "{}: empty path", what_);
    std::error_code ec;
    const bool exists = fs::exists(final_, ec);
    LMSWEEP_CHECK(!exists || fs::is_directory(final_) == (kind_ == Kind::Directory),
                  "{} {}: exists and is not a {}: remove it or choose another path", what_, final_,
                  kind_ == Kind::Directory ? "folder" : "file");
    fs::path parent = fs::path(final_).parent_path();
    if (parent.empty()) parent = ".";
    LMSWEEP_CHECK(fs::is_directory(parent, ec), "{} {}: the folder {} does not exist: create it first", what_,
                  final_, parent.string());
    LMSWEEP_CHECK(::access(parent.c_str(), W_OK) == 0, "{} {}: cannot write into {} ({}): choose another path",
                  what_, final_, parent.string(), std::strerror(errno));
    staged_ = final_ + ".partial-" + std::to_string(::getpid());
    fs::remove_all(staged_, ec);
    if (kind_ == Kind::Directory) {
      fs::create_directory(staged_, ec);
      LMSWEEP_CHECK(!ec, "{} {}: cannot create {} ({}): choose another path", what_, final_, staged_, ec.message());
    }
  }
  StagedOutput(const StagedOutput&) = delete;
  StagedOutput& operator=(const StagedOutput&) = delete;
  ~StagedOutput() {
    if (committed_) return;
    std::error_code ec;
    std::filesystem::remove_all(staged_, ec);
  }

  // Where to write: the staged folder, or the staged file's path.
  const std::string& path() const { return staged_; }
  const std::string& final_path() const { return final_; }

  // Moves the staged output to the final path, replacing what was there.
  void commit() {
    namespace fs = std::filesystem;
    std::error_code ec;
    std::string old;
    if (fs::exists(final_, ec)) {
      old = final_ + ".old-" + std::to_string(::getpid());
      fs::remove_all(old, ec);
      fs::rename(final_, old, ec);
      LMSWEEP_CHECK(!ec, "{} {}: cannot replace it ({}): remove it or choose another path", what_, final_,
                    ec.message());
    }
    fs::rename(staged_, final_, ec);
    if (ec && !old.empty()) {
      std::error_code back;
      fs::rename(old, final_, back);  // the previous output stays as it was
    }
    LMSWEEP_CHECK(!ec, "{} {}: cannot move {} there ({})", what_, final_, staged_, ec.message());
    committed_ = true;
    if (!old.empty()) fs::remove_all(old, ec);
  }

 private:
  std::string final_, staged_;
  Kind kind_;
  std::string what_;
  bool committed_ = false;
};

}  // namespace lmsweep
