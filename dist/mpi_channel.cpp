#include "dist/mpi_channel.h"

#include <chrono>
#include <cstdlib>
#include <thread>
#include <vector>

#include "common/error.h"

namespace lmsweep::dist {
namespace {

// Sleeps growing from 50 us to 5 ms: quick replies stay quick, long waits cost nothing.
class Backoff {
 public:
  void wait() {
    std::this_thread::sleep_for(std::chrono::microseconds(us_));
    us_ = std::min(us_ * 2, 5000);
  }

 private:
  int us_ = 50;
};

void check(int rc, const char* what) {
  LMSWEEP_CHECK(rc == MPI_SUCCESS, "MPI error {} in {}", rc, what);
}

}  // namespace

void send_json(MPI_Comm comm, int dest, int tag, const nlohmann::json& message) {
  const std::string s = message.dump();
  check(MPI_Send(s.data(), static_cast<int>(s.size()), MPI_CHAR, dest, tag, comm), "MPI_Send");
}

Received receive_json(MPI_Comm comm, int source, int tag) {
  std::optional<Received> r;
  while (!(r = receive_json_for(comm, source, tag, 3600))) {
  }
  return *r;
}

std::optional<Received> receive_json_for(MPI_Comm comm, int source, int tag, double seconds) {
  MPI_Status status;
  int flag = 0;
  Backoff backoff;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  while (true) {
    check(MPI_Iprobe(source, tag, comm, &flag, &status), "MPI_Iprobe");
    if (flag) break;
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    backoff.wait();
  }
  int count = 0;
  MPI_Get_count(&status, MPI_CHAR, &count);
  std::string buffer(static_cast<size_t>(count), '\0');
  check(MPI_Recv(buffer.data(), count, MPI_CHAR, status.MPI_SOURCE, status.MPI_TAG, comm, MPI_STATUS_IGNORE),
        "MPI_Recv");
  Received r;
  r.source = status.MPI_SOURCE;
  r.tag = status.MPI_TAG;
  r.message = buffer.empty() ? nlohmann::json::object() : nlohmann::json::parse(buffer);
  return r;
}

nlohmann::json broadcast_json(MPI_Comm comm, int root, const nlohmann::json& value) {
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  if (size == 1) return value;
  std::string s = rank == root ? value.dump() : std::string();
  long long length = static_cast<long long>(s.size());
  MPI_Request request;
  check(MPI_Ibcast(&length, 1, MPI_LONG_LONG, root, comm, &request), "MPI_Ibcast");
  int done = 0;
  Backoff backoff;
  while (!done) {
    MPI_Test(&request, &done, MPI_STATUS_IGNORE);
    if (!done) backoff.wait();
  }
  s.resize(static_cast<size_t>(length));
  check(MPI_Ibcast(s.data(), static_cast<int>(length), MPI_CHAR, root, comm, &request), "MPI_Ibcast");
  done = 0;
  Backoff backoff2;
  while (!done) {
    MPI_Test(&request, &done, MPI_STATUS_IGNORE);
    if (!done) backoff2.wait();
  }
  return nlohmann::json::parse(s);
}

void quiet_barrier(MPI_Comm comm) {
  MPI_Request request;
  check(MPI_Ibarrier(comm, &request), "MPI_Ibarrier");
  int done = 0;
  Backoff backoff;
  while (!done) {
    MPI_Test(&request, &done, MPI_STATUS_IGNORE);
    if (!done) backoff.wait();
  }
}

Channels Channels::create(MPI_Comm world) {
  Channels c;
  check(MPI_Comm_dup(world, &c.up), "MPI_Comm_dup");
  check(MPI_Comm_dup(world, &c.down), "MPI_Comm_dup");
  return c;
}

void Channels::free() {
  if (up != MPI_COMM_NULL) MPI_Comm_free(&up);
  if (down != MPI_COMM_NULL) MPI_Comm_free(&down);
}

MpiSession::MpiSession(int* argc, char*** argv) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided);
    if (provided < MPI_THREAD_MULTIPLE) {
      MPI_Finalize();
      throw_error("the MPI library provides thread level {} but the sweep needs MPI_THREAD_MULTIPLE (its "
                  "coordinator is a thread of rank 0): use an MPI built with thread support",
                  provided);
    }
  }
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
}

MpiSession::~MpiSession() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

NodePlacement node_placement(MPI_Comm comm) {
  MPI_Comm node;
  check(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node), "MPI_Comm_split_type");
  NodePlacement p;
  int comm_size = 1;
  MPI_Comm_rank(node, &p.rank);
  MPI_Comm_size(node, &p.size);
  MPI_Comm_size(comm, &comm_size);
  MPI_Comm_free(&node);
  p.whole_comm_on_node = p.size == comm_size;
  return p;
}

bool launched_by_mpi() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_SIZE", "PMI_RANK", "MPI_LOCALNRANKS"})
    if (std::getenv(v)) return true;
  return false;
}

}  // namespace lmsweep::dist
