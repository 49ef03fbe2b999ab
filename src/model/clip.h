#pragma once
// CLIP in LibTorch with OpenAI's module and parameter names (openai/CLIP clip/model.py), so
// that loading a released checkpoint is a name-for-name copy:
//   visual.*            VisionTransformer or ModifiedResNet (with its attention pool)
//   transformer.*       text transformer (causal mask, QuickGELU)
//   token_embedding.weight, positional_embedding, ln_final.*, text_projection, logit_scale
// Internally sequences are batch-first ([B, L, D]); the arithmetic is OpenAI's.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/container/sequential.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/batchnorm.h>
#include <torch/nn/modules/conv.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>
#include <torch/nn/pimpl.h>

namespace lmsweep {

// The architecture, as OpenAI's build_model reads it off a checkpoint.
struct ClipConfig {
  int64_t embed_dim = 512;
  int64_t image_resolution = 224;
  // Vision tower: a ViT when resnet_layers is empty, a ModifiedResNet otherwise.
  int64_t vision_width = 768;
  int64_t vision_layers = 12;           // ViT depth
  std::vector<int64_t> resnet_layers;   // ModifiedResNet blocks per stage, e.g. {3, 4, 6, 3}
  int64_t vision_patch_size = 16;       // ViT only
  int64_t vision_heads = 0;             // 0: OpenAI's rule (ViT width / 64, ResNet width * 32 / 64)
  int64_t context_length = 77;
  int64_t vocab_size = 49408;
  int64_t transformer_width = 512;
  int64_t transformer_heads = 0;        // 0: OpenAI's rule (width / 64)
  int64_t transformer_layers = 12;

  bool is_resnet() const { return !resnet_layers.empty(); }
  int64_t resolved_vision_heads() const;
  int64_t resolved_transformer_heads() const;
  // One line, e.g. "ViT-B/16-shaped: 224px, patch 16, width 768 x 12 layers, embed 512, ...".
  std::string describe() const;
  // Throws lmsweep::Error when a field is out of range (heads not dividing the width, ...).
  void validate() const;

  // OpenAI's build_model rules applied to parameter names and shapes.
  static ClipConfig from_shapes(const std::map<std::string, std::vector<int64_t>>& shapes,
                                const std::string& source);
  // A named architecture ("RN50", "RN101", "ViT-B/32", "ViT-B/16", "ViT-L/14", "tiny") or a
  // description "vit:res=32,patch=8,width=64,layers=2,embed=32,text-width=64,text-layers=2,
  // vocab=514" / "rn:layers=1-1-1-1,width=16,res=64,..."; unknown keys fail naming them.
  static ClipConfig parse(const std::string& spec);
};

// nn.MultiheadAttention's parameters under its names ("in_proj_weight", "in_proj_bias",
// "out_proj.*"), batch-first.
class MultiheadAttentionImpl : public torch::nn::Module {
 public:
  MultiheadAttentionImpl(int64_t width, int64_t heads);
  // x: [B, L, D] -> [B, L, D]; causal: each position attends to itself and earlier ones.
  at::Tensor forward(const at::Tensor& x, bool causal = false);

  int64_t width, heads;
  at::Tensor in_proj_weight, in_proj_bias;
  torch::nn::Linear out_proj{nullptr};
};
TORCH_MODULE(MultiheadAttention);

class MlpImpl : public torch::nn::Module {
 public:
  explicit MlpImpl(int64_t width);
  at::Tensor forward(const at::Tensor& x);  // c_fc -> QuickGELU -> c_proj
  int64_t width;
  torch::nn::Linear c_fc{nullptr}, c_proj{nullptr};
};
TORCH_MODULE(Mlp);

class ResidualAttentionBlockImpl : public torch::nn::Module {
 public:
  ResidualAttentionBlockImpl(int64_t width, int64_t heads);
  at::Tensor forward(const at::Tensor& x, bool causal = false);  // [B, L, D]
  int64_t width, heads;
  MultiheadAttention attn{nullptr};
  torch::nn::LayerNorm ln_1{nullptr}, ln_2{nullptr};
  Mlp mlp{nullptr};
};
TORCH_MODULE(ResidualAttentionBlock);

// "transformer.resblocks.N.*"
class TransformerImpl : public torch::nn::Module {
 public:
  TransformerImpl(int64_t width, int64_t layers, int64_t heads);
  at::Tensor forward(const at::Tensor& x, bool causal = false);  // [B, L, D]
  int64_t width, layers, heads;
  torch::nn::ModuleList resblocks{nullptr};
};
TORCH_MODULE(Transformer);

class VisionTransformerImpl : public torch::nn::Module {
 public:
  VisionTransformerImpl(int64_t input_resolution, int64_t patch_size, int64_t width,
                        int64_t layers, int64_t heads, int64_t output_dim);
  at::Tensor forward(const at::Tensor& images);  // [B, 3, R, R] -> [B, output_dim]
  int64_t input_resolution, patch_size, width, layers, heads, output_dim;
  torch::nn::Conv2d conv1{nullptr};
  at::Tensor class_embedding, positional_embedding, proj;
  torch::nn::LayerNorm ln_pre{nullptr}, ln_post{nullptr};
  Transformer transformer{nullptr};
};
TORCH_MODULE(VisionTransformer);

class BottleneckImpl : public torch::nn::Module {
 public:
  static constexpr int64_t kExpansion = 4;
  BottleneckImpl(int64_t inplanes, int64_t planes, int64_t stride);
  at::Tensor forward(const at::Tensor& x);
  int64_t inplanes, planes, stride;
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  // OpenAI's downsample = Sequential("-1": AvgPool2d, "0": Conv2d, "1": BatchNorm2d);
  // the pool has no parameters, so only "downsample.0" and "downsample.1" are registered.
  std::shared_ptr<torch::nn::Module> downsample;
  torch::nn::Conv2d downsample_conv{nullptr};
  torch::nn::BatchNorm2d downsample_bn{nullptr};
};
TORCH_MODULE(Bottleneck);

class AttentionPool2dImpl : public torch::nn::Module {
 public:
  AttentionPool2dImpl(int64_t spacial_dim, int64_t embed_dim, int64_t heads, int64_t output_dim);
  at::Tensor forward(const at::Tensor& x);  // [B, C, H, W] -> [B, output_dim]
  int64_t spacial_dim, embed_dim, heads, output_dim;
  at::Tensor positional_embedding;
  torch::nn::Linear k_proj{nullptr}, q_proj{nullptr}, v_proj{nullptr}, c_proj{nullptr};
};
TORCH_MODULE(AttentionPool2d);

class ModifiedResNetImpl : public torch::nn::Module {
 public:
  ModifiedResNetImpl(std::vector<int64_t> layers, int64_t output_dim, int64_t heads,
                     int64_t input_resolution, int64_t width);
  at::Tensor forward(const at::Tensor& images);  // [B, 3, R, R] -> [B, output_dim]
  std::vector<int64_t> layers;
  int64_t output_dim, heads, input_resolution, width;
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr}, conv3{nullptr};
  torch::nn::BatchNorm2d bn1{nullptr}, bn2{nullptr}, bn3{nullptr};
  torch::nn::Sequential layer1{nullptr}, layer2{nullptr}, layer3{nullptr}, layer4{nullptr};
  AttentionPool2d attnpool{nullptr};
};
TORCH_MODULE(ModifiedResNet);

class ClipImpl : public torch::nn::Module {
 public:
  explicit ClipImpl(ClipConfig config);
  // OpenAI's initialize_parameters (normal inits, zeroed bn3); uses the global torch RNG, so
  // seed it first (torch::manual_seed) for a reproducible model.
  void initialize_parameters();

  // images: [B, 3, R, R] float (normalised) -> [B, embed_dim], not normalised.
  at::Tensor encode_image(const at::Tensor& images);
  // tokens: [B, L<=context] int64, EOT = the highest id of each row -> [B, embed_dim].
  // The transformer runs only up to the last EOT of the batch: exact under the causal mask.
  at::Tensor encode_text(const at::Tensor& tokens);
  // The same with the token embeddings read from `rows` [R, width] at `row_of_token[id]`
  // ([vocab] int64) instead of token_embedding.weight: the trainer's compact embedding.
  // length > 0: the batch's last EOT position + 1, known from host-side ids (no device read).
  at::Tensor encode_text(const at::Tensor& tokens, const at::Tensor& rows, const at::Tensor& row_of_token,
                         int64_t length = 0);

  const ClipConfig& config() const { return config_; }

  VisionTransformer visual_vit{nullptr};
  ModifiedResNet visual_resnet{nullptr};
  Transformer transformer{nullptr};
  torch::nn::Embedding token_embedding{nullptr};
  at::Tensor positional_embedding, text_projection, logit_scale;
  torch::nn::LayerNorm ln_final{nullptr};

 private:
  ClipConfig config_;
};
TORCH_MODULE(Clip);

}  // namespace lmsweep
