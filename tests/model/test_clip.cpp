// CLIP forward against OpenAI's own outputs, the ResNet and ViT paths through save/load, and
// the checkpoint errors a user meets.
#include <fstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/serialize.h>
#include <torch/torch.h>

#include "common/error.h"
#include "model/checkpoint.h"
#include "compat/torch_compat.h"
#include "data/image.h"
#include "model/clip.h"
#include "support/shared_data.h"

namespace lmsweep {
namespace {

using testing::shared_file;

at::Tensor json_matrix(const nlohmann::json& j) {
  std::vector<float> v;
  for (const auto& row : j)
    for (const auto& x : row) v.push_back(x.get<float>());
  return torch::tensor(v).view({static_cast<int64_t>(j.size()), -1});
}

// Expects the error message of `fn` to contain every one of `parts`.
template <typename Fn>
void expect_error(Fn&& fn, std::initializer_list<std::string> parts) {
  try {
    fn();
    FAIL() << "expected lmsweep::Error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.find('\n'), std::string::npos) << "one line: " << what;
    for (const auto& p : parts) EXPECT_NE(what.find(p), std::string::npos) << "'" << p << "' not in: " << what;
  }
}

struct TinyOutputs {
  at::Tensor image_features, text_features, logits, logit_scale;
};

// Our forward of the shared tiny ViT on reference.json's images (/255, CLIP mean/std: they are
// already 32x32) and prompt tokens (the first 12 ids of each; the rest is padding).
TinyOutputs run_tiny_vit(const nlohmann::json& ref, const std::filesystem::path& dir) {
  Clip model = load_clip((dir / "model.pt").string());
  model->eval();
  const auto& cfg = model->config();
  EXPECT_EQ(cfg.embed_dim, ref["config"]["embed_dim"].get<int64_t>());
  EXPECT_EQ(cfg.image_resolution, ref["config"]["image_resolution"].get<int64_t>());
  EXPECT_EQ(cfg.vision_layers, ref["config"]["vision_layers"].get<int64_t>());
  EXPECT_EQ(cfg.vision_width, ref["config"]["vision_width"].get<int64_t>());
  EXPECT_EQ(cfg.vision_patch_size, ref["config"]["vision_patch_size"].get<int64_t>());
  EXPECT_EQ(cfg.transformer_layers, ref["config"]["transformer_layers"].get<int64_t>());
  EXPECT_EQ(cfg.resolved_transformer_heads(), ref["config"]["transformer_heads"].get<int64_t>());
  EXPECT_FALSE(cfg.is_resnet());

  std::vector<at::Tensor> images;
  const auto mean = torch::tensor(ref["mean"].get<std::vector<float>>()).view({3, 1, 1});
  const auto std = torch::tensor(ref["std"].get<std::vector<float>>()).view({3, 1, 1});
  for (const auto& rel : ref["images"]) {
    RgbImage rgb = decode_image((dir / rel.get<std::string>()).string());
    auto t = torch::from_blob(rgb.pixels.data(), {rgb.height, rgb.width, 3}, torch::kUInt8).clone();
    t = t.permute({2, 0, 1}).to(torch::kFloat) / 255.0;  // CHW
    images.push_back((t - mean) / std);
  }
  auto tokens = torch::zeros({static_cast<int64_t>(ref["tokens"].size()), 77}, torch::kLong);
  for (size_t i = 0; i < ref["tokens"].size(); ++i)
    for (size_t j = 0; j < ref["tokens"][i].size(); ++j) tokens[i][j] = ref["tokens"][i][j].get<int64_t>();

  torch::NoGradGuard no_grad;
  TinyOutputs out;
  out.image_features = model->encode_image(torch::stack(images));
  out.text_features = model->encode_text(tokens);
  out.logit_scale = model->logit_scale.exp();
  auto img = out.image_features / out.image_features.norm(2, -1, true);
  auto txt = out.text_features / out.text_features.norm(2, -1, true);
  out.logits = out.logit_scale * img.matmul(txt.t());
  return out;
}

double max_abs_diff(const at::Tensor& a, const nlohmann::json& b) {
  return (a - json_matrix(b)).abs().max().item<double>();
}

TEST(ClipReference, TinyViTMatchesTorchScriptExecution) {
  // PyTorch's own execution of the checkpoint's TorchScript code (tests/model/data/README.md).
  LMSWEEP_REQUIRE_SHARED("testdata/clip_vit_tiny/reference.json");
  const auto dir = shared_file("testdata/clip_vit_tiny");
  const auto ref = nlohmann::json::parse(testing::read_text_file(dir / "reference.json"));
  const auto torchscript = nlohmann::json::parse(
      testing::read_text_file(std::string(LMSWEEP_TEST_DATA_DIR) + "/tiny_vit_torchscript_outputs.json"));
  const auto out = run_tiny_vit(ref, dir);
  EXPECT_LT(max_abs_diff(out.image_features, torchscript["image_features"]), 1e-5);
  EXPECT_LT(max_abs_diff(out.text_features, torchscript["text_features"]), 1e-5);
  EXPECT_NEAR(out.logit_scale.item<double>(), torchscript["logit_scale"].get<double>(), 1e-6);
  EXPECT_LT(max_abs_diff(out.logits, torchscript["logits_per_image"]), 1e-4);
}

TEST(ClipReference, TinyViTMatchesOpenAIReference) {
  // reference.json: OpenAI's own code run on the stored fp16 checkpoint (weights as fp32).
  LMSWEEP_REQUIRE_SHARED("testdata/clip_vit_tiny/reference.json");
  const auto dir = shared_file("testdata/clip_vit_tiny");
  const auto ref = nlohmann::json::parse(testing::read_text_file(dir / "reference.json"));
  const auto out = run_tiny_vit(ref, dir);
  EXPECT_LT(max_abs_diff(out.image_features, ref["image_features"]), 1e-4);
  EXPECT_LT(max_abs_diff(out.text_features, ref["text_features"]), 1e-4);
  EXPECT_NEAR(out.logit_scale.item<double>(), ref["logit_scale"].get<double>(), 1e-4);
  EXPECT_LT(max_abs_diff(out.logits, ref["logits_per_image"]), 1e-4);
  // The ranking the evaluation uses is the same.
  EXPECT_TRUE(torch::equal(out.logits.argmax(1), json_matrix(ref["logits_per_image"]).argmax(1)));
}

// LibTorch 2.x's scaled_dot_product_attention (what the model runs) against attention written
// out, causal and not: equal within fp32 rounding. On 1.13 both are the written-out form.
TEST(ClipAttention, FusedAttentionEqualsExplicitAttention) {
  torch::manual_seed(0);
  for (bool causal : {false, true}) {
    const auto q = torch::randn({3, 4, 17, 16}), k = torch::randn({3, 4, 17, 16}), v = torch::randn({3, 4, 17, 16});
    const auto fused = compat::scaled_dot_product_attention(q, k, v, causal);
    const auto explicit_ = compat::explicit_attention(q, k, v, causal);
    EXPECT_LT((fused - explicit_).abs().max().item<double>(), 2e-6) << (causal ? "causal" : "full");
    if (causal)  // the first position sees only itself
      EXPECT_LT((fused.select(2, 0) - v.select(2, 0)).abs().max().item<double>(), 1e-6);
  }
  RecordProperty("fused", compat::has_fused_attention() ? "at::scaled_dot_product_attention" : "explicit (1.13)");
}

TEST(ClipReference, TextTruncationIsExact) {
  // Running the text tower only up to the last EOT of the batch gives the full-length result.
  torch::manual_seed(3);
  Clip model(ClipConfig::parse("vit:res=16,patch=8,width=32,layers=1,embed=16,text-width=32,text-layers=2,vocab=100"));
  model->eval();
  auto tokens = torch::zeros({3, 77}, torch::kLong);
  tokens.index_put_({0, torch::indexing::Slice(0, 4)}, torch::tensor({98, 5, 6, 99}));
  tokens.index_put_({1, torch::indexing::Slice(0, 3)}, torch::tensor({98, 7, 99}));
  tokens.index_put_({2, torch::indexing::Slice(0, 6)}, torch::tensor({98, 1, 2, 3, 4, 99}));
  torch::NoGradGuard no_grad;
  const auto short_run = model->encode_text(tokens);
  // The same rows one at a time (each truncated differently) must agree.
  for (int64_t i = 0; i < 3; ++i) {
    const auto single = model->encode_text(tokens.narrow(0, i, 1));
    EXPECT_LT((single - short_run.narrow(0, i, 1)).abs().max().item<double>(), 1e-5);
  }
}

// Round trip of a randomly initialised model through save_clip_weights / load_clip.
void expect_round_trip(const std::string& arch, const std::string& name) {
  torch::manual_seed(7);
  Clip original(ClipConfig::parse(arch));
  original->eval();
  const auto dir = testing::temp_dir(name);
  const auto path = (dir / "weights.pt").string();
  save_clip_weights(original, path);
  Clip loaded = load_clip(path);
  loaded->eval();
  EXPECT_EQ(loaded->config().describe(), original->config().describe());
  const int64_t r = original->config().image_resolution;
  const auto images = torch::randn({2, 3, r, r});
  auto tokens = torch::zeros({2, 77}, torch::kLong);
  tokens[0][0] = 3; tokens[0][1] = 9; tokens[0][2] = original->config().vocab_size - 1;
  tokens[1][0] = 4; tokens[1][1] = original->config().vocab_size - 1;
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(original->encode_image(images), loaded->encode_image(images)));
  EXPECT_TRUE(torch::equal(original->encode_text(tokens), loaded->encode_text(tokens)));
  std::filesystem::remove_all(dir);
}

// A checkpoint is published whole or not at all: a failed write keeps the previous file as it
// was, and a successful one leaves no temporary file behind.
TEST(ClipCheckpoint, AFailedWriteKeepsThePreviousFile) {
  torch::manual_seed(3);
  const std::string arch = "vit:res=32,patch=8,width=32,layers=1,embed=16,text-width=32,text-layers=1,vocab=514";
  Clip first(ClipConfig::parse(arch)), second(ClipConfig::parse(arch));
  const auto dir = testing::temp_dir("ckpt_durable");
  const auto path = (dir / "best.pt").string();
  save_clip_weights(first, path);
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp"));
  std::filesystem::create_directory(path + ".tmp");  // the next write cannot open its file
  try {
    save_clip_weights(second, path);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
  }
  Clip loaded = load_clip(path);
  const auto a = first->named_parameters(), b = loaded->named_parameters();
  for (const auto& p : a) EXPECT_TRUE(torch::equal(p.value(), b[p.key()])) << p.key();
  std::filesystem::remove_all(dir);
}

TEST(ClipCheckpoint, ResNetRoundTrip) {
  expect_round_trip("rn:layers=1-2-1-1,width=16,res=64,embed=24,text-width=32,text-layers=1", "rn");
  // ModifiedResNet names as OpenAI's: the downsample branch and the attention pool.
  Clip m(ClipConfig::parse("rn:layers=1-1-1-1,width=16,res=64"));
  std::set<std::string> names;
  for (const auto& p : m->named_parameters()) names.insert(p.key());
  for (const char* n : {"visual.conv1.weight", "visual.layer1.0.downsample.0.weight", "visual.layer2.0.downsample.1.bias",
                        "visual.attnpool.positional_embedding", "visual.attnpool.q_proj.weight",
                        "visual.attnpool.c_proj.bias", "transformer.resblocks.0.attn.in_proj_weight",
                        "transformer.resblocks.1.mlp.c_fc.weight", "token_embedding.weight", "text_projection",
                        "logit_scale", "ln_final.weight"})
    EXPECT_TRUE(names.count(n)) << n;
}

TEST(ClipCheckpoint, ViTRoundTrip) {
  expect_round_trip("vit:res=32,patch=8,width=64,layers=2,embed=32,text-width=64,text-layers=2,vocab=514", "vit");
}

TEST(ClipCheckpoint, NamedArchitecturesHaveOpenAIShapes) {
  const auto b16 = ClipConfig::parse("ViT-B/16");
  EXPECT_EQ(b16.resolved_vision_heads(), 12);
  EXPECT_EQ(b16.resolved_transformer_heads(), 8);
  const auto rn50 = ClipConfig::parse("RN50");
  EXPECT_EQ(rn50.resolved_vision_heads(), 32);
  EXPECT_EQ(rn50.embed_dim, 1024);
  expect_error([] { ClipConfig::parse("ViT-H/99"); }, {"ViT-H/99", "--arch"});
  expect_error([] { ClipConfig::parse("vit:colour=3"); }, {"colour"});
}

TEST(ClipCheckpoint, NotACheckpoint) {
  const auto dir = testing::temp_dir("notckpt");
  const auto path = (dir / "notes.pt").string();
  std::ofstream(path) << "this is not a checkpoint\n";
  expect_error([&] { read_state_dict(path); }, {path, "not a CLIP checkpoint"});
  expect_error([&] { read_state_dict((dir / "absent.pt").string()); }, {"absent.pt", "no such"});
  std::filesystem::remove_all(dir);
}

TEST(ClipCheckpoint, WrongShapeAndMissingKey) {
  torch::manual_seed(1);
  const auto dir = testing::temp_dir("shape");
  Clip small(ClipConfig::parse("vit:res=32,patch=8,width=64,layers=1,embed=32,text-width=64,text-layers=1"));
  const auto path = (dir / "small.pt").string();
  save_clip_weights(small, path);
  // Into a model with a wider embedding: names match, shapes do not.
  Clip wide(ClipConfig::parse("vit:res=32,patch=8,width=64,layers=1,embed=48,text-width=64,text-layers=1"));
  expect_error([&] { load_clip_weights(wide, read_state_dict(path)); }, {path, "text_projection", "shape", "64x48"});

  // A state dict with one key dropped.
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& p : small->named_parameters())
    if (p.key() != "ln_final.bias") dict.insert(p.key(), p.value().detach());
  for (const auto& b : small->named_buffers()) dict.insert(b.key(), b.value());
  const auto bytes = torch::pickle_save(c10::IValue(dict));
  const auto missing = (dir / "missing.pt").string();
  std::ofstream(missing, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  expect_error([&] { load_clip(missing); }, {missing, "ln_final.bias"});
  std::filesystem::remove_all(dir);
}

TEST(ClipCheckpoint, ReadsPythonTorchSaveOrderedDict) {
  // Written by Python: torch.save(OrderedDict(a=fp16 tensor, b=fp32 view), path) — the OrderedDict
  // with _metadata that model.state_dict() gives (see data/README.md).
  const std::string path = std::string(LMSWEEP_TEST_DATA_DIR) + "/python_state_dict.pt";
  if (!std::filesystem::exists(path)) GTEST_SKIP() << "missing fixture " << path;
  const auto sd = read_state_dict(path);
  EXPECT_EQ(sd.format, "state_dict");
  ASSERT_EQ(sd.tensors.size(), 2u);
  EXPECT_EQ(sd.tensors[0].first, "visual.a");
  EXPECT_EQ(sd.tensors[1].first, "b");
  EXPECT_EQ(sd.tensors[0].second.scalar_type(), at::kFloat);  // fp16 converted to fp32
  EXPECT_TRUE(torch::equal(sd.tensors[0].second, torch::arange(6, torch::kFloat).view({2, 3}) * 0.5));
  EXPECT_TRUE(torch::equal(sd.tensors[1].second, torch::tensor({3.0f, 5.0f})));
}

}  // namespace
}  // namespace lmsweep
