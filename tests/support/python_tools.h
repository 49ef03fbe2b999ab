#pragma once
// Python from tests: the interpreter with PyPI's optuna / tensorboard (LMSWEEP_TOOLS_PYTHON,
// set by ctest; python3 on PATH otherwise) and Debian's (/usr/bin/python3, python3-optuna).
// A test that needs a module calls skip_without(...) first.
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <string>

namespace lmsweep::testing {

struct PythonRun {
  int status = -1;
  std::string output;  // stdout + stderr
};

inline std::string tools_python() {
  const char* p = std::getenv("LMSWEEP_TOOLS_PYTHON");
  if (p != nullptr && *p != '\0') {
    FILE* f = std::fopen(p, "r");
    if (f != nullptr) {
      std::fclose(f);
      return p;
    }
  }
  return "python3";
}

inline std::string debian_python() { return "/usr/bin/python3"; }

// Runs `python script_path args...` (a shell command line), capturing stdout + stderr.
inline PythonRun run_python(const std::string& python, const std::string& args) {
  PythonRun r;
  FILE* p = popen((python + " " + args + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof(buf), p)) r.output.append(buf, n);
  const int s = pclose(p);
  r.status = WIFEXITED(s) ? WEXITSTATUS(s) : 128 + WTERMSIG(s);
  return r;
}

// The module's version when `python` imports it, else "".
inline std::string module_version(const std::string& python, const std::string& module) {
  const auto r = run_python(python, "-c 'import " + module + " as m; print(getattr(m, \"__version__\", \"?\"))'");
  if (r.status != 0) return "";
  std::string v = r.output;
  while (!v.empty() && (v.back() == '\n' || v.back() == '\r')) v.pop_back();
  return v;
}

}  // namespace lmsweep::testing

// In a TEST body: skips, naming what to install, when `python` lacks `module`.
#define LMSWEEP_SKIP_WITHOUT_MODULE(python, module, install_hint)                              \
  do {                                                                                        \
    if (::lmsweep::testing::module_version((python), (module)).empty())                       \
      GTEST_SKIP() << (python) << " cannot import " << (module) << ": " << (install_hint);    \
  } while (0)
