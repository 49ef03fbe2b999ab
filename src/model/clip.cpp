// CLIP, ported from openai/CLIP clip/model.py (module structure, initialisation, build_model).
#include "model/clip.h"

#include <cmath>
#include <set>
#include <sstream>

#include <torch/torch.h>

#include "common/error.h"
#include "compat/torch_compat.h"

namespace lmsweep {
namespace {

// [B, L, H*hd] -> [B, H, L, hd]
at::Tensor split_heads(const at::Tensor& x, int64_t heads) {
  return x.view({x.size(0), x.size(1), heads, x.size(2) / heads}).transpose(1, 2);
}
// [B, H, L, hd] -> [B, L, H*hd]
at::Tensor merge_heads(const at::Tensor& x) {
  return x.transpose(1, 2).reshape({x.size(0), x.size(2), x.size(1) * x.size(3)});
}

// Norms compute in fp32 whatever autocast runs the matmuls in (OpenAI's LayerNorm subclass
// does the same for fp16); for fp32 inputs this is the identity.
at::Tensor f32(const at::Tensor& x) { return x.to(at::kFloat); }

at::Tensor quick_gelu(const at::Tensor& x) { return x * at::sigmoid(1.702 * x); }

torch::nn::Conv2d conv(int64_t in, int64_t out, int64_t kernel, int64_t stride = 1,
                       int64_t padding = 0) {
  return torch::nn::Conv2d(
      torch::nn::Conv2dOptions(in, out, kernel).stride(stride).padding(padding).bias(false));
}
torch::nn::LayerNorm layer_norm(int64_t width) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({width}).eps(1e-5));
}

}  // namespace

// ---------------------------------------------------------------- ClipConfig

int64_t ClipConfig::resolved_vision_heads() const {
  if (vision_heads > 0) return vision_heads;
  return is_resnet() ? vision_width * 32 / 64 : vision_width / 64;
}
int64_t ClipConfig::resolved_transformer_heads() const {
  return transformer_heads > 0 ? transformer_heads : transformer_width / 64;
}

std::string ClipConfig::describe() const {
  std::ostringstream s;
  if (is_resnet()) {
    s << "ModifiedResNet " << image_resolution << "px, width " << vision_width << ", layers ";
    for (size_t i = 0; i < resnet_layers.size(); ++i) s << (i ? "-" : "") << resnet_layers[i];
  } else {
    s << "ViT " << image_resolution << "px, patch " << vision_patch_size << ", width "
      << vision_width << " x " << vision_layers << " layers";
  }
  s << ", " << resolved_vision_heads() << " heads; text width " << transformer_width << " x "
    << transformer_layers << " layers, " << resolved_transformer_heads() << " heads, vocab "
    << vocab_size << ", context " << context_length << "; embed " << embed_dim;
  return s.str();
}

void ClipConfig::validate() const {
  auto positive = [](int64_t v, const char* name) {
    LMSWEEP_CHECK(v > 0, "CLIP architecture: {} must be positive, got {}", name, v);
  };
  positive(embed_dim, "embed_dim");
  positive(image_resolution, "image_resolution");
  positive(vision_width, "vision_width");
  positive(context_length, "context_length");
  positive(vocab_size, "vocab_size");
  positive(transformer_width, "transformer_width");
  positive(transformer_layers, "transformer_layers");
  const int64_t vh = resolved_vision_heads(), th = resolved_transformer_heads();
  LMSWEEP_CHECK(th > 0 && transformer_width % th == 0,
                "CLIP architecture: text width {} is not divisible into {} heads", transformer_width, th);
  if (is_resnet()) {
    LMSWEEP_CHECK(resnet_layers.size() == 4, "CLIP architecture: a ModifiedResNet has 4 stages, got {}",
                  resnet_layers.size());
    LMSWEEP_CHECK(image_resolution % 32 == 0, "CLIP architecture: ResNet resolution {} is not a multiple of 32",
                  image_resolution);
    LMSWEEP_CHECK(vh > 0 && (vision_width * 32) % vh == 0,
                  "CLIP architecture: ResNet embed width {} is not divisible into {} heads", vision_width * 32, vh);
  } else {
    positive(vision_layers, "vision_layers");
    positive(vision_patch_size, "vision_patch_size");
    LMSWEEP_CHECK(image_resolution % vision_patch_size == 0,
                  "CLIP architecture: resolution {} is not a multiple of the patch size {}", image_resolution,
                  vision_patch_size);
    LMSWEEP_CHECK(vh > 0 && vision_width % vh == 0,
                  "CLIP architecture: vision width {} is not divisible into {} heads", vision_width, vh);
  }
}

ClipConfig ClipConfig::from_shapes(const std::map<std::string, std::vector<int64_t>>& shapes,
                                   const std::string& source) {
  auto shape = [&](const std::string& key) -> const std::vector<int64_t>& {
    auto it = shapes.find(key);
    LMSWEEP_CHECK(it != shapes.end(), "{}: missing key '{}': not a CLIP checkpoint with OpenAI's names",
                  source, key);
    return it->second;
  };
  auto starts_with = [](const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; };
  auto ends_with = [](const std::string& s, const std::string& p) {
    return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
  };
  // The third dotted component: "transformer.resblocks.7.attn..." -> "7".
  auto third = [](const std::string& s) {
    auto a = s.find('.');
    auto b = s.find('.', a + 1);
    auto c = s.find('.', b + 1);
    return s.substr(b + 1, c == std::string::npos ? std::string::npos : c - b - 1);
  };

  ClipConfig c;
  if (shapes.count("visual.proj")) {
    const auto& w = shape("visual.conv1.weight");
    c.vision_width = w.at(0);
    c.vision_patch_size = w.back();
    int64_t layers = 0;
    for (const auto& [k, _] : shapes)
      if (starts_with(k, "visual.") && ends_with(k, ".attn.in_proj_weight")) ++layers;
    c.vision_layers = layers;
    const int64_t grid = std::llround(std::sqrt(static_cast<double>(shape("visual.positional_embedding").at(0) - 1)));
    c.image_resolution = c.vision_patch_size * grid;
  } else {
    for (int b = 1; b <= 4; ++b) {
      std::set<std::string> blocks;
      const std::string prefix = "visual.layer" + std::to_string(b);
      for (const auto& [k, _] : shapes)
        if (starts_with(k, prefix + ".")) blocks.insert(third(k));
      c.resnet_layers.push_back(static_cast<int64_t>(blocks.size()));
    }
    c.vision_width = shape("visual.layer1.0.conv1.weight").at(0);
    const int64_t pos = shape("visual.attnpool.positional_embedding").at(0);
    const int64_t out = std::llround(std::sqrt(static_cast<double>(pos - 1)));
    LMSWEEP_CHECK(out * out + 1 == pos, "{}: visual.attnpool.positional_embedding has {} rows, not a square grid + 1",
                  source, pos);
    c.image_resolution = out * 32;
  }
  c.embed_dim = shape("text_projection").at(1);
  c.context_length = shape("positional_embedding").at(0);
  c.vocab_size = shape("token_embedding.weight").at(0);
  c.transformer_width = shape("ln_final.weight").at(0);
  std::set<std::string> text_blocks;
  for (const auto& [k, _] : shapes)
    if (starts_with(k, "transformer.resblocks.")) text_blocks.insert(third(k));
  c.transformer_layers = static_cast<int64_t>(text_blocks.size());
  // Models narrower than 64 (test-sized ones) still need one head.
  if (c.transformer_width < 64) c.transformer_heads = 1;
  if (!c.is_resnet() && c.vision_width < 64) c.vision_heads = 1;
  c.validate();
  return c;
}

ClipConfig ClipConfig::parse(const std::string& spec_in) {
  std::string spec = spec_in;
  ClipConfig c;
  auto text = [&](int64_t width, int64_t layers, int64_t embed) {
    c.transformer_width = width;
    c.transformer_layers = layers;
    c.embed_dim = embed;
  };
  if (spec == "RN50") {
    c.resnet_layers = {3, 4, 6, 3}; c.vision_width = 64; text(512, 12, 1024); return c;
  }
  if (spec == "RN101") {
    c.resnet_layers = {3, 4, 23, 3}; c.vision_width = 64; text(512, 12, 512); return c;
  }
  if (spec == "ViT-B/32") {
    c.vision_width = 768; c.vision_layers = 12; c.vision_patch_size = 32; text(512, 12, 512); return c;
  }
  if (spec == "ViT-B/16") {
    c.vision_width = 768; c.vision_layers = 12; c.vision_patch_size = 16; text(512, 12, 512); return c;
  }
  if (spec == "ViT-L/14") {
    c.vision_width = 1024; c.vision_layers = 24; c.vision_patch_size = 14; text(768, 12, 768); return c;
  }
  const bool vit = spec.rfind("vit:", 0) == 0, rn = spec.rfind("rn:", 0) == 0;
  LMSWEEP_CHECK(vit || rn,
                "--arch '{}': expected RN50, RN101, ViT-B/32, ViT-B/16, ViT-L/14, or a description "
                "'vit:res=32,patch=8,width=64,layers=2,embed=32,text-width=64,text-layers=2' / "
                "'rn:layers=1-1-1-1,width=16,res=64,...'",
                spec_in);
  // Small defaults for described models; every key may override them.
  c = ClipConfig{};
  c.image_resolution = 32; c.vision_width = 64; c.vision_layers = 2; c.vision_patch_size = 8;
  c.embed_dim = 32; c.transformer_width = 64; c.transformer_layers = 2; c.vocab_size = 514;
  if (rn) { c.resnet_layers = {1, 1, 1, 1}; c.vision_width = 16; c.image_resolution = 64; }
  std::stringstream items(spec.substr(vit ? 4 : 3));
  std::string item;
  while (std::getline(items, item, ',')) {
    if (item.empty()) continue;
    auto eq = item.find('=');
    LMSWEEP_CHECK(eq != std::string::npos, "--arch '{}': '{}' is not key=value", spec_in, item);
    const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
    auto number = [&]() -> int64_t {
      try {
        size_t used = 0;
        int64_t v = std::stoll(value, &used);
        if (used == value.size()) return v;
      } catch (const std::exception&) {
      }
      throw_error("--arch '{}': {} = '{}' is not an integer", spec_in, key, value);
    };
    if (key == "res") c.image_resolution = number();
    else if (key == "patch") c.vision_patch_size = number();
    else if (key == "width") c.vision_width = number();
    else if (key == "layers" && vit) c.vision_layers = number();
    else if (key == "layers" && rn) {
      c.resnet_layers.clear();
      std::stringstream ls(value);
      std::string l;
      while (std::getline(ls, l, '-')) c.resnet_layers.push_back(std::stoll(l));
    } else if (key == "heads") c.vision_heads = number();
    else if (key == "embed") c.embed_dim = number();
    else if (key == "text-width") c.transformer_width = number();
    else if (key == "text-layers") c.transformer_layers = number();
    else if (key == "text-heads") c.transformer_heads = number();
    else if (key == "context") c.context_length = number();
    else if (key == "vocab") c.vocab_size = number();
    else
      throw_error("--arch '{}': unknown key '{}' (res, patch, width, layers, heads, embed, text-width, "
                  "text-layers, text-heads, context, vocab)", spec_in, key);
  }
  if (c.transformer_heads == 0 && c.transformer_width < 64) c.transformer_heads = 1;
  if (c.vision_heads == 0 && !c.is_resnet() && c.vision_width < 64) c.vision_heads = 1;
  c.validate();
  return c;
}

// ---------------------------------------------------------------- modules

MultiheadAttentionImpl::MultiheadAttentionImpl(int64_t width_, int64_t heads_)
    : width(width_), heads(heads_) {
  in_proj_weight = register_parameter("in_proj_weight", torch::empty({3 * width, width}));
  in_proj_bias = register_parameter("in_proj_bias", torch::zeros({3 * width}));
  out_proj = register_module("out_proj", torch::nn::Linear(width, width));
  torch::nn::init::xavier_uniform_(in_proj_weight);  // as nn.MultiheadAttention
  torch::nn::init::zeros_(out_proj->bias);
}

at::Tensor MultiheadAttentionImpl::forward(const at::Tensor& x, bool causal) {
  auto qkv = at::linear(x, in_proj_weight, in_proj_bias).chunk(3, -1);
  auto out = compat::scaled_dot_product_attention(split_heads(qkv[0], heads), split_heads(qkv[1], heads),
                                          split_heads(qkv[2], heads), causal);
  return out_proj(merge_heads(out));
}

MlpImpl::MlpImpl(int64_t width_) : width(width_) {
  c_fc = register_module("c_fc", torch::nn::Linear(width, width * 4));
  c_proj = register_module("c_proj", torch::nn::Linear(width * 4, width));
}
at::Tensor MlpImpl::forward(const at::Tensor& x) { return c_proj(quick_gelu(c_fc(x))); }

ResidualAttentionBlockImpl::ResidualAttentionBlockImpl(int64_t width_, int64_t heads_)
    : width(width_), heads(heads_) {
  attn = register_module("attn", MultiheadAttention(width, heads));
  ln_1 = register_module("ln_1", layer_norm(width));
  mlp = register_module("mlp", Mlp(width));
  ln_2 = register_module("ln_2", layer_norm(width));
}
at::Tensor ResidualAttentionBlockImpl::forward(const at::Tensor& x_in, bool causal) {
  auto x = x_in + attn(ln_1(f32(x_in)), causal);
  return x + mlp(ln_2(f32(x)));
}

TransformerImpl::TransformerImpl(int64_t width_, int64_t layers_, int64_t heads_)
    : width(width_), layers(layers_), heads(heads_) {
  resblocks = register_module("resblocks", torch::nn::ModuleList());
  for (int64_t i = 0; i < layers; ++i) resblocks->push_back(ResidualAttentionBlock(width, heads));
}
at::Tensor TransformerImpl::forward(const at::Tensor& x_in, bool causal) {
  auto x = x_in;
  for (const auto& block : *resblocks) x = block->as<ResidualAttentionBlockImpl>()->forward(x, causal);
  return x;
}

VisionTransformerImpl::VisionTransformerImpl(int64_t input_resolution_, int64_t patch_size_,
                                             int64_t width_, int64_t layers_, int64_t heads_,
                                             int64_t output_dim_)
    : input_resolution(input_resolution_), patch_size(patch_size_), width(width_),
      layers(layers_), heads(heads_), output_dim(output_dim_) {
  conv1 = register_module("conv1", conv(3, width, patch_size, patch_size));
  const double scale = std::pow(static_cast<double>(width), -0.5);
  const int64_t grid = input_resolution / patch_size;
  class_embedding = register_parameter("class_embedding", scale * torch::randn({width}));
  positional_embedding =
      register_parameter("positional_embedding", scale * torch::randn({grid * grid + 1, width}));
  ln_pre = register_module("ln_pre", layer_norm(width));
  transformer = register_module("transformer", Transformer(width, layers, heads));
  ln_post = register_module("ln_post", layer_norm(width));
  proj = register_parameter("proj", scale * torch::randn({width, output_dim}));
}

at::Tensor VisionTransformerImpl::forward(const at::Tensor& images) {
  TORCH_CHECK(images.dim() == 4 && images.size(1) == 3 && images.size(2) == input_resolution &&
                  images.size(3) == input_resolution,
              "VisionTransformer expects [B, 3, ", input_resolution, ", ", input_resolution, "], got ",
              images.sizes());
  auto x = f32(conv1(images));            // [B, width, grid, grid]; the residual stream in fp32
  x = x.flatten(2).transpose(1, 2);       // [B, grid^2, width]
  auto cls = class_embedding.to(x.dtype()).expand({x.size(0), 1, width});
  x = at::cat({cls, x}, 1) + positional_embedding.to(x.dtype());
  x = transformer(ln_pre(f32(x)));
  x = ln_post(f32(x.select(1, 0)));            // the class token
  return at::matmul(x, proj);
}

BottleneckImpl::BottleneckImpl(int64_t inplanes_, int64_t planes_, int64_t stride_)
    : inplanes(inplanes_), planes(planes_), stride(stride_) {
  conv1 = register_module("conv1", conv(inplanes, planes, 1));
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(planes));
  conv2 = register_module("conv2", conv(planes, planes, 3, 1, 1));
  bn2 = register_module("bn2", torch::nn::BatchNorm2d(planes));
  conv3 = register_module("conv3", conv(planes, planes * kExpansion, 1));
  bn3 = register_module("bn3", torch::nn::BatchNorm2d(planes * kExpansion));
  if (stride > 1 || inplanes != planes * kExpansion) {
    downsample = register_module("downsample", std::make_shared<torch::nn::Module>());
    downsample_conv = downsample->register_module("0", conv(inplanes, planes * kExpansion, 1));
    downsample_bn = downsample->register_module("1", torch::nn::BatchNorm2d(planes * kExpansion));
  }
}

at::Tensor BottleneckImpl::forward(const at::Tensor& x) {
  auto out = at::relu(bn1(f32(conv1(x))));
  out = at::relu(bn2(f32(conv2(out))));
  if (stride > 1) out = at::avg_pool2d(out, {stride, stride});
  out = bn3(f32(conv3(out)));
  at::Tensor identity = x;
  if (downsample) {
    identity = stride > 1 ? at::avg_pool2d(x, {stride, stride}) : x;
    identity = downsample_bn(f32(downsample_conv(identity)));
  }
  return at::relu(out + identity);
}

AttentionPool2dImpl::AttentionPool2dImpl(int64_t spacial_dim_, int64_t embed_dim_, int64_t heads_,
                                         int64_t output_dim_)
    : spacial_dim(spacial_dim_), embed_dim(embed_dim_), heads(heads_), output_dim(output_dim_) {
  positional_embedding = register_parameter(
      "positional_embedding",
      torch::randn({spacial_dim * spacial_dim + 1, embed_dim}) / std::sqrt(static_cast<double>(embed_dim)));
  k_proj = register_module("k_proj", torch::nn::Linear(embed_dim, embed_dim));
  q_proj = register_module("q_proj", torch::nn::Linear(embed_dim, embed_dim));
  v_proj = register_module("v_proj", torch::nn::Linear(embed_dim, embed_dim));
  c_proj = register_module("c_proj", torch::nn::Linear(embed_dim, output_dim));
}

at::Tensor AttentionPool2dImpl::forward(const at::Tensor& x_in) {
  auto x = x_in.flatten(2).transpose(1, 2);                 // [B, HW, C]
  x = at::cat({x.mean(1, /*keepdim=*/true), x}, 1);         // [B, HW+1, C]
  x = x + positional_embedding.to(x.dtype());
  // Only the mean token queries (OpenAI: query=x[:1]).
  auto q = split_heads(q_proj(x.narrow(1, 0, 1)), heads);
  auto k = split_heads(k_proj(x), heads);
  auto v = split_heads(v_proj(x), heads);
  auto out = merge_heads(compat::scaled_dot_product_attention(q, k, v, false));  // [B, 1, C]
  return c_proj(out).squeeze(1);
}

ModifiedResNetImpl::ModifiedResNetImpl(std::vector<int64_t> layers_, int64_t output_dim_,
                                       int64_t heads_, int64_t input_resolution_, int64_t width_)
    : layers(std::move(layers_)), output_dim(output_dim_), heads(heads_),
      input_resolution(input_resolution_), width(width_) {
  conv1 = register_module("conv1", conv(3, width / 2, 3, 2, 1));
  bn1 = register_module("bn1", torch::nn::BatchNorm2d(width / 2));
  conv2 = register_module("conv2", conv(width / 2, width / 2, 3, 1, 1));
  bn2 = register_module("bn2", torch::nn::BatchNorm2d(width / 2));
  conv3 = register_module("conv3", conv(width / 2, width, 3, 1, 1));
  bn3 = register_module("bn3", torch::nn::BatchNorm2d(width));
  int64_t inplanes = width;
  auto make_layer = [&](int64_t planes, int64_t blocks, int64_t stride) {
    torch::nn::Sequential seq;
    seq->push_back(Bottleneck(inplanes, planes, stride));
    inplanes = planes * BottleneckImpl::kExpansion;
    for (int64_t i = 1; i < blocks; ++i) seq->push_back(Bottleneck(inplanes, planes, 1));
    return seq;
  };
  layer1 = register_module("layer1", make_layer(width, layers.at(0), 1));
  layer2 = register_module("layer2", make_layer(width * 2, layers.at(1), 2));
  layer3 = register_module("layer3", make_layer(width * 4, layers.at(2), 2));
  layer4 = register_module("layer4", make_layer(width * 8, layers.at(3), 2));
  attnpool = register_module("attnpool", AttentionPool2d(input_resolution / 32, width * 32, heads, output_dim));
}

at::Tensor ModifiedResNetImpl::forward(const at::Tensor& images) {
  auto x = at::relu(bn1(f32(conv1(images))));
  x = at::relu(bn2(f32(conv2(x))));
  x = at::relu(bn3(f32(conv3(x))));
  x = at::avg_pool2d(x, {2, 2});
  x = layer4->forward(layer3->forward(layer2->forward(layer1->forward(x))));
  return attnpool(x);
}

ClipImpl::ClipImpl(ClipConfig config) : config_(std::move(config)) {
  config_.validate();
  const auto& c = config_;
  if (c.is_resnet()) {
    visual_resnet = register_module(
        "visual", ModifiedResNet(c.resnet_layers, c.embed_dim, c.resolved_vision_heads(),
                                 c.image_resolution, c.vision_width));
  } else {
    visual_vit = register_module(
        "visual", VisionTransformer(c.image_resolution, c.vision_patch_size, c.vision_width,
                                    c.vision_layers, c.resolved_vision_heads(), c.embed_dim));
  }
  transformer = register_module(
      "transformer", Transformer(c.transformer_width, c.transformer_layers, c.resolved_transformer_heads()));
  token_embedding = register_module("token_embedding", torch::nn::Embedding(c.vocab_size, c.transformer_width));
  positional_embedding = register_parameter("positional_embedding", torch::empty({c.context_length, c.transformer_width}));
  ln_final = register_module("ln_final", layer_norm(c.transformer_width));
  text_projection = register_parameter("text_projection", torch::empty({c.transformer_width, c.embed_dim}));
  logit_scale = register_parameter("logit_scale", torch::full({}, std::log(1.0 / 0.07)));
  initialize_parameters();
}

void ClipImpl::initialize_parameters() {
  torch::NoGradGuard no_grad;
  const auto& c = config_;
  torch::nn::init::normal_(token_embedding->weight, 0.0, 0.02);
  torch::nn::init::normal_(positional_embedding, 0.0, 0.01);
  if (visual_resnet) {
    auto& pool = visual_resnet->attnpool;
    const double std = std::pow(static_cast<double>(pool->c_proj->options.in_features()), -0.5);
    for (auto* l : {&pool->q_proj, &pool->k_proj, &pool->v_proj, &pool->c_proj})
      torch::nn::init::normal_((*l)->weight, 0.0, std);
    for (auto* layer : {&visual_resnet->layer1, &visual_resnet->layer2, &visual_resnet->layer3,
                        &visual_resnet->layer4})
      for (auto& p : (*layer)->named_parameters()) {
        const auto& name = p.key();
        if (name.size() >= 10 && name.compare(name.size() - 10, 10, "bn3.weight") == 0) p.value().zero_();
      }
  }
  const double width = static_cast<double>(c.transformer_width);
  const double proj_std = std::pow(width, -0.5) * std::pow(2.0 * c.transformer_layers, -0.5);
  const double attn_std = std::pow(width, -0.5);
  const double fc_std = std::pow(2.0 * width, -0.5);
  for (const auto& m : *transformer->resblocks) {
    auto* block = m->as<ResidualAttentionBlockImpl>();
    torch::nn::init::normal_(block->attn->in_proj_weight, 0.0, attn_std);
    torch::nn::init::normal_(block->attn->out_proj->weight, 0.0, proj_std);
    torch::nn::init::normal_(block->mlp->c_fc->weight, 0.0, fc_std);
    torch::nn::init::normal_(block->mlp->c_proj->weight, 0.0, proj_std);
  }
  torch::nn::init::normal_(text_projection, 0.0, std::pow(width, -0.5));
}

at::Tensor ClipImpl::encode_image(const at::Tensor& images) {
  return visual_vit ? visual_vit->forward(images) : visual_resnet->forward(images);
}

at::Tensor ClipImpl::encode_text(const at::Tensor& tokens) { return encode_text(tokens, {}, {}); }

at::Tensor ClipImpl::encode_text(const at::Tensor& tokens, const at::Tensor& rows, const at::Tensor& row_of_token,
                                 int64_t length) {
  TORCH_CHECK(tokens.dim() == 2 && tokens.size(1) <= config_.context_length,
              "encode_text expects [B, L<=", config_.context_length, "] token ids, got ", tokens.sizes());
  const auto eot = tokens.argmax(-1);                       // [B]
  // Later positions never reach EOT. Reading the length off the device would stop the host
  // until the device catches up: callers that know it from host-side ids pass it.
  if (length <= 0) length = eot.max().item<int64_t>() + 1;
  const auto ids = tokens.narrow(1, 0, length);
  const auto embedded = rows.defined() ? at::embedding(rows, row_of_token.index_select(0, ids.reshape(-1)).view_as(ids)) : token_embedding(ids);
  auto x = embedded + positional_embedding.narrow(0, 0, length);
  x = ln_final(f32(transformer(x, /*causal=*/true)));            // [B, length, width]
  x = x.gather(1, eot.view({-1, 1, 1}).expand({x.size(0), 1, x.size(2)})).squeeze(1);
  return at::matmul(x, text_projection);
}

}  // namespace lmsweep
