// Tests of the TensorBoard event files (export/tensorboard/, export/tensorboard_export.h):
// CRC-32C and its mask against published vectors, TFRecord framing byte for byte, event files
// read back with our protos, the study writer's runs and HParams records, the export's
// folder handling, and a study exported and read by the `tensorboard` package itself.
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "db/store.h"
#include "export/tensorboard/crc32c.h"
#include "export/tensorboard/event_file.h"
#include "export/tensorboard/study_writer.h"
#include "export/tensorboard/summaries.h"
#include "export/tensorboard_export.h"
#include "report/study_data.h"
#include "support/errors.h"
#include "support/python_tools.h"
#include "support/shared_data.h"
#include "sweep/search_space.h"
#include "tensorboard/tbproto/event.pb.h"
#include "tensorboard/tbproto/hparams.pb.h"
#include "tensorboard/tbproto/summary.pb.h"

namespace {

namespace fs = std::filesystem;
namespace tb = lmsweep::tensorboard;
using lmsweep::testing::error_of;

// --- reading event files back, independently of the writer's code

std::uint64_t get_le(const std::string& s, std::size_t at, int bytes) {
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) v |= std::uint64_t(static_cast<unsigned char>(s[at + i])) << (8 * i);
  return v;
}

// The records of a TFRecord file, each CRC checked (a test failure when one is wrong).
std::vector<std::string> read_records(const fs::path& path) {
  const std::string bytes = lmsweep::testing::read_text_file(path);
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at < bytes.size()) {
    EXPECT_GE(bytes.size() - at, 12u) << "truncated header in " << path;
    if (bytes.size() - at < 12) break;
    const std::uint64_t n = get_le(bytes, at, 8);
    EXPECT_EQ(get_le(bytes, at + 8, 4), tb::masked_crc32c(std::string_view(bytes).substr(at, 8)));
    EXPECT_GE(bytes.size() - at - 12, n + 4) << "truncated record in " << path;
    if (bytes.size() - at - 12 < n + 4) break;
    const std::string data = bytes.substr(at + 12, n);
    EXPECT_EQ(get_le(bytes, at + 12 + n, 4), tb::masked_crc32c(data));
    out.push_back(data);
    at += 12 + n + 4;
  }
  return out;
}

std::vector<lmsweep::tb::Event> read_events(const fs::path& path) {
  std::vector<lmsweep::tb::Event> out;
  for (const auto& r : read_records(path)) {
    lmsweep::tb::Event e;
    EXPECT_TRUE(e.ParseFromString(r)) << "a record of " << path << " is not an Event";
    out.push_back(e);
  }
  return out;
}

std::vector<fs::path> event_files(const fs::path& dir) {
  std::vector<fs::path> out;
  if (!fs::is_directory(dir)) return out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().filename().string().rfind("events.out.tfevents.", 0) == 0)
      out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

// The HParams plugin data of the one value of `event` with `tag`; fails when there is none.
lmsweep::tb::hparams::HParamsPluginData hparams_data(const lmsweep::tb::Event& event, const std::string& tag) {
  lmsweep::tb::hparams::HParamsPluginData data;
  EXPECT_TRUE(event.has_summary());
  EXPECT_EQ(event.summary().value_size(), 1);
  if (event.summary().value_size() != 1) return data;
  const auto& v = event.summary().value(0);
  EXPECT_EQ(v.tag(), tag);
  EXPECT_EQ(v.metadata().plugin_data().plugin_name(), "hparams");
  EXPECT_EQ(v.metadata().data_class(), lmsweep::tb::DATA_CLASS_TENSOR);
  // metadata.NULL_TENSOR: an empty float vector.
  EXPECT_EQ(v.tensor().dtype(), lmsweep::tb::DT_FLOAT);
  EXPECT_EQ(v.tensor().tensor_shape().dim_size(), 1);
  EXPECT_TRUE(data.ParseFromString(v.metadata().plugin_data().content()));
  EXPECT_EQ(data.version(), 0);
  return data;
}

// --- CRC-32C and framing

TEST(TensorBoardCrc32c, KnownVectors) {
  EXPECT_EQ(tb::crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(tb::crc32c(""), 0u);
  EXPECT_EQ(tb::crc32c("abc"), 0x364B3FB7u);
  // RFC 3720 (iSCSI), appendix B.4.
  EXPECT_EQ(tb::crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(tb::crc32c(std::string(32, '\xFF')), 0x62A8AB43u);
  std::string up, down;
  for (int i = 0; i < 32; ++i) {
    up.push_back(static_cast<char>(i));
    down.push_back(static_cast<char>(31 - i));
  }
  EXPECT_EQ(tb::crc32c(up), 0x46DD794Eu);
  EXPECT_EQ(tb::crc32c(down), 0x113FDB5Cu);
}

TEST(TensorBoardCrc32c, ContinuesAcrossChunks) {
  const std::string s = "The quick brown fox jumps over the lazy dog";
  for (std::size_t cut : {std::size_t{0}, std::size_t{1}, std::size_t{17}, s.size()})
    EXPECT_EQ(tb::crc32c(s.data() + cut, s.size() - cut, tb::crc32c(s.data(), cut)), tb::crc32c(s)) << cut;
}

TEST(TensorBoardCrc32c, Mask) {
  EXPECT_EQ(tb::mask_crc(0), 0xa282ead8u);
  // ((c >> 15) | (c << 17)) + 0xa282ead8, by hand for c = crc32c("abc") = 0x364B3FB7.
  EXPECT_EQ(tb::mask_crc(0x364B3FB7u), 0x21F1576Eu);  // rotated 0x7F6E6C96, + 0xa282ead8 mod 2^32
  EXPECT_EQ(tb::masked_crc32c("abc"), tb::mask_crc(0x364B3FB7u));
}

TEST(TensorBoardFraming, RecordByteForByte) {
  // As tensorboard's own record writer frames b"abc" (its pure-python masked_crc32c).
  const unsigned char expected[] = {0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xb0, 0x99,
                                    0x49, 0x0e, 0x61, 0x62, 0x63, 0x6e, 0x57, 0xf1, 0x21};
  const std::string framed = tb::frame_record("abc");
  ASSERT_EQ(framed.size(), sizeof(expected));
  EXPECT_EQ(std::memcmp(framed.data(), expected, sizeof(expected)), 0);
  const std::string empty = tb::frame_record("");
  ASSERT_EQ(empty.size(), 16u);
  EXPECT_EQ(get_le(empty, 12, 4), 0xa282ead8u);  // mask of crc32c("") = 0
}

// --- event files

TEST(TensorBoardEventFile, NameAsTensorFlowMakesIt) {
  EXPECT_EQ(tb::event_file_name(1700000000.7, "node01", 4242, 3), "events.out.tfevents.1700000000.node01.4242.3");
  EXPECT_EQ(tb::event_file_name(5, "h", 1, 0), "events.out.tfevents.0000000005.h.1.0");
}

TEST(TensorBoardEventFile, ReadsBackWithProtobuf) {
  const auto dir = lmsweep::testing::temp_dir("tb_file") / "run";  // created by the writer
  std::string path;
  {
    tb::EventFileWriter w(dir.string());
    path = w.path();
    // Visible before close: each record is in the kernel when write() returns.
    EXPECT_EQ(read_events(path).size(), 1u);
    w.write(tb::scalars_event(1234.5, 7, {{"map", 0.625}, {"train_loss", 1.5}}));
    w.write(tb::session_start_log_event(1235, 8));
    EXPECT_EQ(read_events(path).size(), 3u);
  }
  EXPECT_EQ(fs::path(path).parent_path(), dir);
  const auto events = read_events(path);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(events[0].file_version(), "brain.Event:2");
  EXPECT_GT(events[0].wall_time(), 1.6e9);
  EXPECT_EQ(events[1].step(), 7);
  EXPECT_DOUBLE_EQ(events[1].wall_time(), 1234.5);
  ASSERT_EQ(events[1].summary().value_size(), 2);
  EXPECT_EQ(events[1].summary().value(0).tag(), "map");
  EXPECT_FLOAT_EQ(events[1].summary().value(0).simple_value(), 0.625f);
  EXPECT_EQ(events[1].summary().value(1).tag(), "train_loss");
  EXPECT_EQ(events[2].session_log().status(), lmsweep::tb::SessionLog::START);
  EXPECT_EQ(events[2].step(), 8);
}

TEST(TensorBoardEventFile, TwoWritersOfOneFolderMakeTwoFiles) {
  const auto dir = lmsweep::testing::temp_dir("tb_two");
  tb::EventFileWriter a(dir.string()), b(dir.string());
  EXPECT_NE(a.path(), b.path());
  EXPECT_EQ(event_files(dir).size(), 2u);
}

TEST(TensorBoardEventFile, UnwritableFolderNamesIt) {
  const auto dir = lmsweep::testing::temp_dir("tb_bad");
  const auto blocker = dir / "a_file";
  std::ofstream(blocker) << "x";
  // A regular file where a folder should be (a chmod'ed folder does not stop root).
  tb::EventFileOptions o;
  o.what = "--tensorboard";
  const std::string message = error_of([&] { tb::EventFileWriter w((blocker / "runs").string(), o); });
  EXPECT_NE(message.find("--tensorboard"), std::string::npos) << message;
  EXPECT_NE(message.find((blocker / "runs").string()), std::string::npos) << message;
  EXPECT_NE(message.find("pass a folder you can write"), std::string::npos) << message;
}

// --- the study writer

lmsweep::sweep::SearchSpace demo_space() {
  using lmsweep::sweep::parse_dimension;
  return lmsweep::sweep::SearchSpace({parse_dimension("batch-size", "choice(8, 16, 32)"),
                                      parse_dimension("gamma-neg", "uniform(2, 12)"),
                                      parse_dimension("lambda", "loguniform(0.1, 10)"),
                                      parse_dimension("loss", "choice(clip, clip+bal)"),
                                      parse_dimension("warmup", "int(0, 5)")});
}

TEST(TensorBoardStudyWriter, HParamDomains) {
  const auto specs = tb::hparam_specs(demo_space());
  ASSERT_EQ(specs.size(), 5u);
  EXPECT_EQ(specs[0].name, "batch-size");
  EXPECT_EQ(specs[0].type, tb::HParamType::Float64);
  EXPECT_EQ(specs[0].discrete, nlohmann::json::parse("[8, 16, 32]"));
  EXPECT_FALSE(specs[0].interval);
  EXPECT_EQ(specs[1].interval, std::make_pair(2.0, 12.0));
  EXPECT_EQ(specs[1].description, "uniform(2, 12)");
  EXPECT_EQ(specs[2].interval, std::make_pair(0.1, 10.0));
  EXPECT_EQ(specs[2].description, "loguniform(0.1, 10)");
  EXPECT_EQ(specs[3].type, tb::HParamType::String);
  EXPECT_EQ(specs[3].discrete, nlohmann::json::parse(R"(["clip", "clip+bal"])"));
  EXPECT_EQ(specs[4].interval, std::make_pair(0.0, 5.0));
  const auto mixed = tb::hparam_specs(lmsweep::sweep::SearchSpace(
      {lmsweep::sweep::parse_dimension("x", "choice(1, a)")}));
  EXPECT_EQ(mixed[0].type, tb::HParamType::Unset);
  EXPECT_FALSE(mixed[0].discrete.is_array());
}

TEST(TensorBoardStudyWriter, StatusesAndRunNames) {
  using lmsweep::db::TrialStatus;
  EXPECT_EQ(tb::session_status(TrialStatus::Completed), tb::SessionStatus::Success);
  EXPECT_EQ(tb::session_status(TrialStatus::Pruned), tb::SessionStatus::Success);
  EXPECT_EQ(tb::session_status(TrialStatus::Failed), tb::SessionStatus::Failure);
  EXPECT_FALSE(tb::session_status(TrialStatus::Interrupted));
  EXPECT_FALSE(tb::session_status(TrialStatus::Running));
  EXPECT_EQ(tb::trial_run_name(3), "trial-00003");
  EXPECT_EQ(tb::trial_run_name(123456), "trial-123456");
  EXPECT_EQ(tb::safe_run_name("train:/work/ckpt a"), "train__work_ckpt_a");
  EXPECT_EQ(tb::safe_run_name("train-20250101-120000-42"), "train-20250101-120000-42");
  EXPECT_EQ(tb::safe_run_name(".."), "run");
}

TEST(TensorBoardStudyWriter, EpochScalarsAreTheMetricsOutKeys) {
  lmsweep::db::EpochRecord r;
  r.epoch = 2;
  r.train_loss = 1.25;
  r.map = 0.5;
  r.map_tail = std::nan("");  // not finite: left out
  r.metrics_json = R"({"f1": 0.25, "images": 40, "class_names": ["a"], "flag": true, "bad key": 1})";
  const auto s = tb::epoch_scalars(r);
  std::vector<std::string> tags;
  for (const auto& [t, v] : s) tags.push_back(t);
  EXPECT_EQ(tags, (std::vector<std::string>{"train_loss", "map", "f1", "images"}));
  EXPECT_DOUBLE_EQ(s[2].second, 0.25);
}

// One trial through the writer, twice (a resumed attempt): the run's files and records.
TEST(TensorBoardStudyWriter, TrialRunAndResumedAttempt) {
  const auto dir = lmsweep::testing::temp_dir("tb_study") / "tb";
  lmsweep::db::StudyInfo study;
  study.name = "demo";
  study.method = "random";
  study.created_at = 1.7e9;
  lmsweep::db::TrialInfo trial;
  trial.number = 3;
  trial.started_at = 1.7e9 + 10;
  lmsweep::db::EpochRecord e;
  e.map = 0.5;
  tb::TensorBoardOptions o;
  o.tag_prefix = "test/";
  tb::TensorBoardStudyWriter w(dir.string(), o);
  w.begin(study, demo_space(), {"map_tail", "map", "map_tail"});
  const std::string params = R"({"batch-size": 16, "gamma-neg": 4.5, "loss": "clip"})";
  w.trial_started(trial, params);
  for (int epoch : {1, 2}) {
    e.epoch = epoch;
    w.epoch(trial, e);
  }
  w.trial_ended(trial, lmsweep::db::TrialStatus::Interrupted);
  w.trial_started(trial, params);  // resumed from epoch 1's checkpoint
  e.epoch = 2;
  w.epoch(trial, e);
  trial.finished_at = 1.7e9 + 99;
  w.trial_ended(trial, lmsweep::db::TrialStatus::Completed);

  const auto root = event_files(dir);
  ASSERT_EQ(root.size(), 1u);
  const auto exp_events = read_events(root[0]);
  ASSERT_EQ(exp_events.size(), 2u);
  const auto exp = hparams_data(exp_events[1], "_hparams_/experiment");
  ASSERT_TRUE(exp.has_experiment());
  ASSERT_EQ(exp.experiment().hparam_infos_size(), 5);
  EXPECT_EQ(exp.experiment().hparam_infos(1).name(), "gamma-neg");
  EXPECT_DOUBLE_EQ(exp.experiment().hparam_infos(1).domain_interval().max_value(), 12);
  EXPECT_EQ(exp.experiment().hparam_infos(0).domain_discrete().values(2).number_value(), 32);
  ASSERT_EQ(exp.experiment().metric_infos_size(), 2);  // duplicates dropped, order kept
  EXPECT_EQ(exp.experiment().metric_infos(0).name().tag(), "test/map_tail");
  EXPECT_EQ(exp.experiment().metric_infos(1).name().group(), "");
  EXPECT_DOUBLE_EQ(exp.experiment().time_created_secs(), 1.7e9);

  const auto files = event_files(dir / "trial-00003");
  ASSERT_EQ(files.size(), 2u);  // one per attempt
  const auto first = read_events(files[0]);
  ASSERT_EQ(first.size(), 5u);  // version, start info, START, 2 epochs; no end info (interrupted)
  const auto start = hparams_data(first[1], "_hparams_/session_start_info");
  EXPECT_EQ(start.session_start_info().group_name(), "trial-00003");
  EXPECT_DOUBLE_EQ(start.session_start_info().start_time_secs(), 1.7e9 + 10);
  EXPECT_EQ(start.session_start_info().hparams().at("batch-size").number_value(), 16);
  EXPECT_EQ(start.session_start_info().hparams().at("loss").string_value(), "clip");
  EXPECT_EQ(first[2].session_log().status(), lmsweep::tb::SessionLog::START);
  EXPECT_EQ(first[2].step(), 1);
  EXPECT_EQ(first[4].step(), 2);
  EXPECT_EQ(first[4].summary().value(0).tag(), "test/map");
  const auto second = read_events(files[1]);
  ASSERT_EQ(second.size(), 5u);  // version, start info, START at 2, epoch 2, end info
  EXPECT_EQ(second[2].step(), 2);
  const auto end = hparams_data(second[4], "_hparams_/session_end_info");
  EXPECT_EQ(end.session_end_info().status(), lmsweep::tb::hparams::STATUS_SUCCESS);
  EXPECT_DOUBLE_EQ(end.session_end_info().end_time_secs(), 1.7e9 + 99);
}

TEST(TensorBoardStudyWriter, TrainRunWritesIntoItsFolderWithoutExperiment) {
  const auto dir = lmsweep::testing::temp_dir("tb_train") / "train-x";
  tb::TensorBoardOptions o;
  o.run_per_trial = false;
  tb::TensorBoardStudyWriter w(dir.string(), o);
  lmsweep::db::TrialInfo trial;
  w.begin(lmsweep::db::StudyInfo{}, lmsweep::sweep::SearchSpace{}, tb::lmclip_metric_tags());
  EXPECT_TRUE(event_files(dir).empty());  // TensorBoard derives the experiment from the session
  w.trial_started(trial, R"({"lambda": 0.4})");
  w.trial_ended(trial, lmsweep::db::TrialStatus::Failed);
  const auto files = event_files(dir);
  ASSERT_EQ(files.size(), 1u);
  const auto events = read_events(files[0]);
  ASSERT_EQ(events.size(), 3u);
  EXPECT_EQ(hparams_data(events[1], "_hparams_/session_start_info").session_start_info().group_name(), "train-x");
  EXPECT_EQ(hparams_data(events[2], "_hparams_/session_end_info").session_end_info().status(),
            lmsweep::tb::hparams::STATUS_FAILURE);
}

// --- the export from a database

struct DemoStudy {
  fs::path dir;
  lmsweep::report::StudyData data;
  nlohmann::json expected;  // run -> {status, params, scalars: tag -> [[step, value]...]}
};

// Five trials of a 3-dimension space: completed (3 epochs), pruned (1), failed (1),
// interrupted (2) and pending (never ran, so not exported).
DemoStudy make_demo_study(const std::string& name) {
  DemoStudy d;
  d.dir = lmsweep::testing::temp_dir(name);
  auto store = lmsweep::db::Store::open((d.dir / "study.db").string());
  using lmsweep::sweep::parse_dimension;
  const lmsweep::sweep::SearchSpace space({parse_dimension("batch-size", "choice(8, 16, 32)"),
                                           parse_dimension("gamma-neg", "uniform(2, 12)"),
                                           parse_dimension("lambda", "loguniform(0.1, 10)")});
  lmsweep::db::StudySpec spec;
  spec.name = "tb_demo";
  spec.space_json = space.canonical();
  spec.method = "random";
  spec.objective = "map";
  spec.scheduler = "asha";
  const auto study = store.create_or_get_study(spec);
  const char* statuses[] = {"completed", "pruned", "failed", "interrupted", "pending"};
  const int epochs[] = {3, 1, 1, 2, 0};
  for (int k = 0; k < 5; ++k) {
    const nlohmann::json params = {{"batch-size", 8 << (k % 3)}, {"gamma-neg", 2.5 + k}, {"lambda", 0.1 * (k + 1)}};
    const auto t = store.add_trial(study.id, k, params.dump(), 100 + k);
    nlohmann::json& x = d.expected[tb::trial_run_name(k)];
    x = {{"params", params}, {"status", statuses[k]}, {"scalars", nlohmann::json::object()}};
    if (k == 4) continue;
    store.start_trial(t.id, 0, "node01");
    for (int e = 1; e <= epochs[k]; ++e) {
      lmsweep::db::EpochRecord r;
      r.epoch = e;
      r.train_loss = 2.0 / (e + k);
      r.lr = 1e-5 * e;
      r.map = 0.1 * e + 0.01 * k;
      r.map_tail = 0.05 * e + 0.02 * k;
      r.metrics_json = nlohmann::json{{"f1", 0.3 + 0.1 * e}, {"class_names", {"a", "b"}}}.dump();
      store.record_epoch(t.id, r, {});
      for (const auto& [tag, v] : tb::epoch_scalars(r)) x["scalars"][tag].push_back({e, v});
    }
    if (k == 0) store.complete_trial(t.id);
    if (k == 1) store.prune_trial(t.id);
    if (k == 2) store.fail_trial(t.id, "CUDA out of memory");
    if (k == 3) store.interrupt_trial(t.id);
  }
  d.expected.erase(tb::trial_run_name(4));
  d.data = lmsweep::report::load_study(store, std::string("tb_demo"));
  return d;
}

TEST(TensorBoardExport, WritesOneRunPerTrialThatRan) {
  auto d = make_demo_study("tb_export");
  const auto out = d.dir / "tb";
  lmsweep::export_tensorboard(d.data, out.string());
  EXPECT_EQ(event_files(out).size(), 1u);
  for (int k = 0; k < 4; ++k) EXPECT_EQ(event_files(out / tb::trial_run_name(k)).size(), 1u) << k;
  EXPECT_FALSE(fs::exists(out / tb::trial_run_name(4)));  // pending: never ran
  for (const auto& e : fs::directory_iterator(d.dir))     // no staging folder left
    EXPECT_EQ(e.path().filename().string().find(".partial-"), std::string::npos) << e.path();
  const auto events = read_events(event_files(out / "trial-00002")[0]);
  EXPECT_EQ(hparams_data(events.back(), "_hparams_/session_end_info").session_end_info().status(),
            lmsweep::tb::hparams::STATUS_FAILURE);
  const auto tags = lmsweep::study_metric_tags(d.data);
  EXPECT_EQ(tags, (std::vector<std::string>{"map", "map_tail", "train_loss", "f1"}));
  // Exported again: the previous export is replaced whole, not added to.
  lmsweep::export_tensorboard(d.data, out.string() + "/");
  EXPECT_EQ(event_files(out).size(), 1u);
  EXPECT_EQ(event_files(out / "trial-00000").size(), 1u);
}

TEST(TensorBoardExport, RefusesAFolderWithOtherFilesAndLeavesItAsItWas) {
  auto d = make_demo_study("tb_export_full");
  const auto out = d.dir / "tb";
  fs::create_directories(out / "trial-00000");
  std::ofstream(out / "trial-00000" / "notes.txt") << "mine";
  const std::string message = error_of([&] { lmsweep::export_tensorboard(d.data, out.string()); });
  EXPECT_NE(message.find("--out " + out.string()), std::string::npos) << message;
  EXPECT_NE(message.find("notes.txt"), std::string::npos) << message;
  EXPECT_NE(message.find("pass a new folder"), std::string::npos) << message;
  EXPECT_TRUE(fs::exists(out / "trial-00000" / "notes.txt"));
  EXPECT_TRUE(event_files(out).empty());
}

TEST(TensorBoardExport, RefusesAnUnwritablePlaceInOneLine) {
  auto d = make_demo_study("tb_export_bad");
  std::ofstream(d.dir / "a_file") << "x";
  const auto out = d.dir / "a_file" / "tb";
  const std::string message = error_of([&] { lmsweep::export_tensorboard(d.data, out.string()); });
  EXPECT_NE(message.find(out.string()), std::string::npos) << message;
  EXPECT_EQ(message.find('\n'), std::string::npos) << message;
  EXPECT_FALSE(fs::exists(d.dir / "a_file" / "tb"));
}

// Runs read_tensorboard.py on `logdir` with the runs it must find.
lmsweep::testing::PythonRun read_with_tensorboard(const std::string& python, const fs::path& logdir,
                                                  const nlohmann::json& runs, const fs::path& expected_file) {
  std::ofstream(expected_file) << nlohmann::json{{"runs", runs}}.dump(1);
  return lmsweep::testing::run_python(
      python, std::string(LMSWEEP_READ_TENSORBOARD_PY) + " " + logdir.string() + " " + expected_file.string());
}

// The `tensorboard` package reads the export as its server does: every trial's scalars at
// the right steps, the HParams experiment, sessions and statuses (read_tensorboard.py).
TEST(TensorBoardExport, TensorBoardReadsIt) {
  const std::string python = lmsweep::testing::tools_python();
  LMSWEEP_SKIP_WITHOUT_MODULE(python, "tensorboard",
                              "scripts/setup.sh --with-test-deps (PyPI's tensorboard in the tools venv)");
  auto d = make_demo_study("tb_export_read");
  const auto out = d.dir / "tb";
  lmsweep::export_tensorboard(d.data, out.string());
  const auto r = read_with_tensorboard(python, out, d.expected, d.dir / "expected.json");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("ok: 4 sessions"), std::string::npos) << r.output;
}

// A trial written live, interrupted after epoch 3 and resumed from epoch 1's checkpoint: its
// second event file rewrites epochs 2 and 3, and TensorBoard shows each epoch once, the new
// values, and the status of the attempt that ended.
TEST(TensorBoardExport, TensorBoardReadsAResumedTrialOnce) {
  const std::string python = lmsweep::testing::tools_python();
  LMSWEEP_SKIP_WITHOUT_MODULE(python, "tensorboard",
                              "scripts/setup.sh --with-test-deps (PyPI's tensorboard in the tools venv)");
  const auto dir = lmsweep::testing::temp_dir("tb_resumed");
  using lmsweep::sweep::parse_dimension;
  const lmsweep::sweep::SearchSpace space({parse_dimension("lambda", "loguniform(0.1, 10)")});
  tb::TensorBoardStudyWriter w((dir / "tb").string());
  lmsweep::db::StudyInfo study;
  study.name = "resumed";
  w.begin(study, space, {"map"});
  lmsweep::db::TrialInfo trial;
  const std::string params = R"({"lambda": 0.5})";
  lmsweep::db::EpochRecord e;
  w.trial_started(trial, params);
  for (int epoch = 1; epoch <= 3; ++epoch) {
    e.epoch = epoch;
    e.map = 0.1 * epoch;
    w.epoch(trial, e);
  }
  w.trial_ended(trial, lmsweep::db::TrialStatus::Interrupted);
  w.trial_started(trial, params);
  for (int epoch = 2; epoch <= 3; ++epoch) {
    e.epoch = epoch;
    e.map = 0.5 + 0.1 * epoch;
    w.epoch(trial, e);
  }
  w.trial_ended(trial, lmsweep::db::TrialStatus::Completed);
  nlohmann::json expected;
  expected["trial-00000"] = {{"params", {{"lambda", 0.5}}},
                             {"status", "completed"},
                             {"scalars", {{"map", {{1, 0.1}, {2, 0.7}, {3, 0.8}}}}}};
  const auto r = read_with_tensorboard(python, dir / "tb", expected, dir / "expected.json");
  EXPECT_EQ(r.status, 0) << r.output;
  EXPECT_NE(r.output.find("ok: 1 sessions"), std::string::npos) << r.output;
}

}  // namespace
