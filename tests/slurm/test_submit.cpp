// `lmsweep submit`: the rendered batch script, and its errors. The SLURM cluster tests are
// sweep_on_slurm.sh (a real slurmctld + slurmd); these need no SLURM.
#include <signal.h>
#include <sys/wait.h>

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "launcher/slurm_submit.h"
#include "support/shared_data.h"

namespace lmsweep {
namespace {

namespace fs = std::filesystem;

struct Result {
  int status = -1;
  std::string out, err;
};

Result run(const std::string& command) {
  Result r;
  const std::string err_file = (fs::temp_directory_path() / ("submit_err_" + std::to_string(getpid()))).string();
  FILE* p = popen((command + " 2>" + err_file).c_str(), "r");
  char buf[4096];
  while (size_t n = fread(buf, 1, sizeof(buf), p)) r.out.append(buf, n);
  const int s = pclose(p);
  r.status = WIFEXITED(s) ? WEXITSTATUS(s) : 128 + WTERMSIG(s);
  r.err = testing::read_text_file(err_file);
  fs::remove(err_file);
  return r;
}

const std::string kExe = LMSWEEP_EXE;

class Submit : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::temp_dir("submit");
    std::ofstream(dir_ / "sweep.ini") << "[sweep]\nname = s\nmethod = random\ntrials = 4\n[space]\nlambda = "
                                          "loguniform(0.1, 10)\n[train]\nsynthetic = synth\narch = vit:res=32,patch=8,width=32,"
                                          "layers=1,embed=16,text-width=32,text-layers=1,vocab=514\n";
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string cd() const { return "cd " + dir_.string() + " && "; }
  fs::path dir_;
};

TEST_F(Submit, DryRunTwoNodesFourGpus) {
  fs::create_directories(dir_ / "runs");  // the script goes beside the database
  const auto again = run(cd() + kExe + " submit --config sweep.ini --db runs/sweep.db --nodes 2 --gpus-per-node 4 "
                                       "--time 2-00:00:00 --partition gpu --account proj7 --cpus-per-task 8 "
                                       "--sbatch-arg=--qos=high --dry-run");
  ASSERT_EQ(again.status, 0) << again.err;
  const std::string script_path = again.out.substr(0, again.out.find('\n'));
  EXPECT_EQ(script_path, (dir_ / "runs" / "sweep.lmsweep-sweep.sbatch").string());
  ASSERT_TRUE(fs::exists(script_path));
  const std::string script = testing::read_text_file(script_path);
  EXPECT_EQ(again.out.substr(again.out.find('\n') + 1), script);  // printed as written
  for (const std::string& line : std::vector<std::string>{"#!/bin/bash", "#SBATCH --job-name=lmsweep-sweep", "#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=4",
        "#SBATCH --gpus-per-node=4", "#SBATCH --cpus-per-task=8", "#SBATCH --time=2-00:00:00",
        "#SBATCH --partition=gpu", "#SBATCH --account=proj7", "#SBATCH --requeue", "#SBATCH --signal=B:USR1@120",
        "#SBATCH --open-mode=append", "#SBATCH --qos=high",
        "#SBATCH --output=" + (dir_ / "runs" / "lmsweep-sweep-%j.log").string(),
        "srun --mpi=pmix --kill-on-bad-exit=1 " + kExe + " sweep --config " + (dir_ / "sweep.ini").string() +
            " --db " + (dir_ / "runs" / "sweep.db").string() + " --checkpoint-dir " +
            (dir_ / "runs" / "sweep.db.checkpoints").string() + " --device cuda &",
        "trap 'stopping=1; kill -USR1 \"$launcher\" 2>/dev/null' USR1 TERM", "if [ \"$rc\" -eq 75 ]; then",
        "  scontrol requeue \"${SLURM_JOB_ID}\""})
    EXPECT_NE(script.find(line + "\n"), std::string::npos) << "missing line: " << line << "\n" << script;
  EXPECT_EQ(script.find("{{"), std::string::npos) << "unfilled placeholder:\n" << script;
  EXPECT_EQ(script.find("--ntasks="), std::string::npos);
}

TEST_F(Submit, CpuOnlyAndMpirunLauncher) {
  cli::SubmitOptions o;
  o.config = (dir_ / "sweep.ini").string();
  o.db = (dir_ / "s.db").string();
  o.nodes = 2;
  o.gpus_per_node = 0;
  o.ntasks = 6;
  o.launcher = "mpirun";
  o.lmsweep = "/opt/lmsweep/bin/lmsweep";
  o.sweep_args = {"--lr", "1e-5"};
  const std::string s = cli::render_sbatch(o);
  EXPECT_NE(s.find("#SBATCH --ntasks-per-node=3\n"), std::string::npos) << s;
  EXPECT_NE(s.find("#SBATCH --cpus-per-task=1\n"), std::string::npos);
  EXPECT_EQ(s.find("--gpus-per-node"), std::string::npos);
  EXPECT_EQ(s.find("--device cuda"), std::string::npos);
  EXPECT_NE(s.find("mpirun -np \"${SLURM_NTASKS}\" --bind-to none /opt/lmsweep/bin/lmsweep sweep"), std::string::npos);
  EXPECT_NE(s.find(" --lr 1e-5 &\n"), std::string::npos) << s;
}

// trials_per_device = 2 (in the sweep's [sweep]): two ranks per GPU, and CUDA MPS started on every
// node before the sweep and stopped after it, on every way out.
TEST_F(Submit, TwoTrialsPerGpuStartAndStopMps) {
  std::ofstream(dir_ / "packed.ini") << "[sweep]\nname = s\nmethod = random\ntrials = 4\ntrials_per_device = 2\n"
                                        "[space]\nlambda = loguniform(0.1, 10)\n[train]\nsynthetic = synth\n"
                                        "arch = vit:res=32,patch=8,width=32,layers=1,embed=16,text-width=32,"
                                        "text-layers=1,vocab=514\n";
  const auto r = run(cd() + kExe + " submit --config packed.ini --db p.db --nodes 2 --gpus-per-node 4 --dry-run");
  ASSERT_EQ(r.status, 0) << r.err;
  const std::string s = r.out;
  EXPECT_NE(s.find("#SBATCH --ntasks-per-node=8\n"), std::string::npos) << s;
  EXPECT_NE(s.find("exec nvidia-cuda-mps-control -f' &\n"), std::string::npos) << s;
  EXPECT_NE(s.find("srun --overlap --nodes=2 --ntasks-per-node=1 --gpus-per-node=4 bash -c"), std::string::npos);
  const size_t start = s.find("nvidia-cuda-mps-control -f"), launch = s.find(" sweep --config ");
  const size_t stop = s.find("\nstop_mps\n"), requeue = s.find("scontrol requeue", launch);
  EXPECT_LT(start, launch);   // the daemons run before the first rank starts
  EXPECT_LT(launch, stop);    // and are stopped after the launcher has exited,
  EXPECT_LT(stop, requeue);   // requeued or not
  EXPECT_EQ(s.find("{{"), std::string::npos);
  // One trial per GPU: no MPS.
  const auto one = run(cd() + kExe + " submit --config sweep.ini --db q.db --nodes 1 --gpus-per-node 2 --dry-run");
  ASSERT_EQ(one.status, 0) << one.err;
  EXPECT_EQ(one.out.find("mps"), std::string::npos);
  EXPECT_NE(one.out.find("#SBATCH --ntasks-per-node=2\n"), std::string::npos);
}

// Preemption signals every process of the job, mpirun included, and mpirun then exits 1 although
// every rank stopped cleanly with 75: the script still requeues the job and exits 75.
TEST_F(Submit, SigtermToTheWholeJobRequeuesWith75) {
  std::ofstream(dir_ / "fake.ini") << "[sweep]\nname = f\nmethod = random\ntrials = 6\n[space]\nlambda = "
                                      "loguniform(0.1, 10)\n[train]\narch = vit:res=32,patch=8,width=32,layers=1,"
                                      "embed=16\ntrain = x\ntest = x\nlabels = x\nepochs = 10\n";
  fs::create_directories(dir_ / "bin");
  std::ofstream(dir_ / "bin" / "scontrol") << "#!/bin/sh\necho \"$@\" > " << (dir_ / "scontrol.args").string() << "\n";
  fs::permissions(dir_ / "bin" / "scontrol", fs::perms::owner_all);
  cli::SubmitOptions o;
  o.config = (dir_ / "fake.ini").string();
  o.db = (dir_ / "s.db").string();
  o.gpus_per_node = 0;
  o.ntasks = 2;
  o.launcher = "mpirun";
  o.lmsweep = kExe;
  o.workdir = dir_.string();
  o.sweep_args = {"--fake-epoch-seconds", "0.5"};
  std::ofstream(dir_ / "job.sbatch") << cli::render_sbatch(o);
  const std::string env = "SLURM_JOB_ID=1 SLURM_NTASKS=2 SLURM_JOB_NODELIST=here PATH=" + (dir_ / "bin").string() +
                          ":$PATH OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_mpi_yield_when_idle=1";
  const pid_t pid = fork();
  if (pid == 0) {
    setsid();  // a process group of its own: the job, as SLURM sees it
    execl("/bin/sh", "sh", "-c", ("cd " + dir_.string() + " && " + env + " exec bash job.sbatch > job.log 2>&1").c_str(),
          static_cast<char*>(nullptr));
    _exit(127);
  }
  // Once trials run, SIGTERM to every process of the job.
  for (int i = 0; i < 300 && !fs::exists(dir_ / "s.db"); ++i) usleep(50 * 1000);
  sleep(3);
  kill(-pid, SIGTERM);
  int status = 0;
  waitpid(pid, &status, 0);
  const std::string log = testing::read_text_file((dir_ / "job.log").string());
  ASSERT_TRUE(WIFEXITED(status)) << log;
  EXPECT_EQ(WEXITSTATUS(status), 75) << log;
  EXPECT_EQ(testing::read_text_file((dir_ / "scontrol.args").string()), "requeue 1\n") << log;
  EXPECT_NE(log.find("requeueing job 1"), std::string::npos) << log;
}

TEST(SubmitTime, SlurmFormats) {
  for (const char* ok : {"30", "30:00", "12:00:00", "1-12", "1-12:30", "1-12:30:00", "UNLIMITED"})
    EXPECT_TRUE(cli::is_slurm_time(ok)) << ok;
  for (const char* bad : {"", "12h", "1:2:3:4", "-5", "1-", "abc", "12:00:00 ", "1.5"})
    EXPECT_FALSE(cli::is_slurm_time(bad)) << bad;
}

TEST_F(Submit, BadTimeLimitIsOneLine) {
  const auto r = run(cd() + kExe + " submit --config sweep.ini --db s.db --gpus-per-node 4 --time 12h --dry-run");
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err.find("lmsweep submit: error: --time '12h'"), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_FALSE(fs::exists(dir_ / "s.lmsweep-sweep.sbatch"));
}

// A config `sweep` would refuse, and a value that would add a line to the script: one line,
// no script written.
TEST_F(Submit, RefusesWhatSweepWouldRefuseAndLineBreaksInValues) {
  std::ofstream(dir_ / "bad.ini") << "[sweep]\nname = s\nmethod = random\ntrials = 4\n[space]\nbatch-size = "
                                     "choice(8, abc)\n[train]\nsynthetic = synth\narch = RN50\n";
  auto r = run(cd() + kExe + " submit --config bad.ini --db s.db --gpus-per-node 4 --dry-run");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("batch-size can take the value abc"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  r = run(cd() + kExe + " submit --config sweep.ini --db s.db --gpus-per-node 4 --partition \"$(printf 'gpu\\n#SBATCH --x')\" --dry-run");
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err.find("lmsweep submit: error: --partition"), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  // sbatch would split `#SBATCH --account=my project` into two arguments.
  for (const std::string option : {"--account 'my project'", "--job-name 'my job'", "--partition \"gpu'\""}) {
    r = run(cd() + kExe + " submit --config sweep.ini --db s.db --gpus-per-node 4 " + option + " --dry-run");
    EXPECT_EQ(r.status, 1) << option;
    EXPECT_NE(r.err.find("no blanks or quotes in an #SBATCH value"), std::string::npos) << option << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
  EXPECT_FALSE(fs::exists(dir_ / "s.lmsweep-sweep.sbatch"));
}

TEST_F(Submit, MissingSbatchIsOneLine) {
  const auto r = run(cd() + kExe + " submit --config sweep.ini --db s.db --gpus-per-node 2 --sbatch /nonexistent/sbatch");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("lmsweep submit: error: /nonexistent/sbatch not found"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--dry-run"), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST_F(Submit, SbatchErrorIsOneLine) {
  // A stand-in sbatch that refuses the job as a real one would.
  const auto fake = dir_ / "sbatch";
  std::ofstream(fake) << "#!/bin/sh\necho 'sbatch: error: Batch job submission failed: Invalid account or "
                         "account/partition combination specified' >&2\nexit 1\n";
  fs::permissions(fake, fs::perms::owner_all);
  const auto r = run(cd() + kExe + " submit --config sweep.ini --db s.db --gpus-per-node 2 --account nope --sbatch " +
                     fake.string());
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("lmsweep submit: error: " + fake.string() + " failed (exit 1): sbatch: error: Batch job "
                       "submission failed: Invalid account"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST_F(Submit, SubmitsWithSbatchAndPrintsTheJobId) {
  const auto fake = dir_ / "sbatch";
  std::ofstream(fake) << "#!/bin/sh\n[ \"$1\" = --parsable ] && [ -f \"$2\" ] && echo '4242;cluster' && exit 0\nexit 3\n";
  fs::permissions(fake, fs::perms::owner_all);
  const auto r = run(cd() + kExe + " submit --config sweep.ini --db s.db --gpus-per-node 0 --ntasks 2 --sbatch " +
                     fake.string());
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("submitted job 4242\n"), std::string::npos) << r.out;
}

TEST_F(Submit, ContradictoryAllocation) {
  const auto r = run(cd() + kExe + " submit --config sweep.ini --db s.db --gpus-per-node 0 --dry-run");
  EXPECT_EQ(r.status, 1);
  EXPECT_NE(r.err.find("--ntasks"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace lmsweep
