#include "train/host_sync.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include <ATen/record_function.h>
#include <c10/util/Backtrace.h>

namespace lmsweep {

struct HostSyncCounter::State {
  std::atomic<int64_t> count{0};
  std::mutex mutex;
  std::vector<std::string> ops;
};

namespace {

// The one counter callbacks report to (at most one counter at a time).
std::mutex g_mutex;
std::shared_ptr<HostSyncCounter::State> g_state;
thread_local int t_inside_fused = 0;

bool is_sync_op(const char* name) {
  static const char* const kOps[] = {
      "aten::_local_scalar_dense", "aten::nonzero",           "aten::unique_consecutive", "aten::_unique",
      "aten::_unique2",            "aten::unique_dim",        "aten::masked_select",      "aten::repeat_interleave",
      "aten::argwhere",            "aten::_assert_async",     "aten::equal",              "aten::allclose"};
  for (const char* op : kOps)
    if (std::strcmp(name, op) == 0) return true;
  return false;
}
bool is_fused_on_device(const char* name) {
  return std::strcmp(name, "aten::_fused_adamw_") == 0 || std::strcmp(name, "aten::_fused_adam_") == 0;
}

std::unique_ptr<at::ObserverContext> on_enter(const at::RecordFunction& fn) {
  const char* name = fn.name();
  if (is_fused_on_device(name)) {
    ++t_inside_fused;
  } else if (t_inside_fused == 0 && is_sync_op(name)) {
    std::shared_ptr<HostSyncCounter::State> s;
    {
      std::lock_guard<std::mutex> lock(g_mutex);
      s = g_state;
    }
    if (s) {
      ++s->count;
      std::lock_guard<std::mutex> lock(s->mutex);
      // LMSWEEP_SYNC_BACKTRACE=1: where each op came from (for finding a new one).
      static const bool with_trace = std::getenv("LMSWEEP_SYNC_BACKTRACE") != nullptr;
      if (s->ops.size() < 64) s->ops.emplace_back(with_trace ? std::string(name) + "\n" + c10::get_backtrace(2, 24) : name);
    }
  }
  return nullptr;
}
void on_exit(const at::RecordFunction& fn, at::ObserverContext*) {
  if (is_fused_on_device(fn.name())) --t_inside_fused;
}

}  // namespace

HostSyncCounter::HostSyncCounter() : state_(std::make_shared<State>()) {
  {
    std::lock_guard<std::mutex> lock(g_mutex);
    g_state = state_;
  }
  handle_ = at::addGlobalCallback(at::RecordFunctionCallback(on_enter, on_exit).scopes({at::RecordScope::FUNCTION}));
}

HostSyncCounter::~HostSyncCounter() {
  at::removeCallback(handle_);
  std::lock_guard<std::mutex> lock(g_mutex);
  if (g_state == state_) g_state.reset();
}

int64_t HostSyncCounter::count() const { return state_->count.load(); }

std::vector<std::string> HostSyncCounter::ops() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->ops;
}

void HostSyncCounter::reset() {
  state_->count = 0;
  std::lock_guard<std::mutex> lock(state_->mutex);
  state_->ops.clear();
}

}  // namespace lmsweep
