#pragma once
// Exit statuses with a meaning beyond failure, shared by the launcher and the sweep.
namespace lmsweep {

// A sweep or train run stopped with its state saved (SIGUSR1 / SIGTERM, or a rank the watchdog
// could not free): the batch script requeues the job on it (EX_TEMPFAIL).
constexpr int kExitRequeue = 75;

}  // namespace lmsweep
