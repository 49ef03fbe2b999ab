#pragma once
// JSON messages over MPI, and waits that do not spin a core: Open MPI's blocking calls
// busy-poll, which would steal a CPU from the ranks that train beside an idle one.
#include <mpi.h>

#include <optional>
#include <string>

#include <nlohmann/json.hpp>

namespace lmsweep::dist {

void send_json(MPI_Comm comm, int dest, int tag, const nlohmann::json& message);

struct Received {
  int source = -1;
  int tag = -1;
  nlohmann::json message;
};
// Waits (polling, with a short sleep) for a message from source / tag (MPI_ANY_* allowed).
Received receive_json(MPI_Comm comm, int source, int tag);
// The same, giving up after `seconds` (nothing received: nullopt).
std::optional<Received> receive_json_for(MPI_Comm comm, int source, int tag, double seconds);

// MPI_Bcast of a JSON value from root to the communicator (every rank returns it).
nlohmann::json broadcast_json(MPI_Comm comm, int root, const nlohmann::json& value);

// A barrier that sleeps between polls instead of spinning.
void quiet_barrier(MPI_Comm comm);

// The two directions of the coordinator protocol on duplicates of the world communicator:
// rank 0 runs the coordinator and a worker in two threads, so a message to the coordinator
// must never match a worker's receive, nor the other way round.
struct Channels {
  MPI_Comm up = MPI_COMM_NULL;    // leaders -> coordinator
  MPI_Comm down = MPI_COMM_NULL;  // coordinator -> leaders
  static Channels create(MPI_Comm world);  // collective
  void free();
};

// MPI_Init_thread with MPI_THREAD_MULTIPLE (the coordinator is a thread of rank 0), once per
// process; MPI_Finalize at exit. Throws lmsweep::Error if the MPI library cannot do threads.
class MpiSession {
 public:
  MpiSession(int* argc, char*** argv);
  ~MpiSession();
  MpiSession(const MpiSession&) = delete;
  MpiSession& operator=(const MpiSession&) = delete;
  int rank() const { return rank_; }
  int size() const { return size_; }

 private:
  int rank_ = 0, size_ = 1;
};

// Where this rank sits among the ranks of `comm` on its host: its node-local rank (the GPU it
// takes), how many of them share the host, and whether all of `comm` is on this one host.
struct NodePlacement {
  int rank = 0;
  int size = 1;
  bool whole_comm_on_node = true;
};
NodePlacement node_placement(MPI_Comm comm);  // collective

// True when this process was started by mpirun / srun (so MPI must be initialised).
bool launched_by_mpi();

}  // namespace lmsweep::dist
