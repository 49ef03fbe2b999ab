#include "loss/losses.h"

#include <algorithm>
#include <cmath>

#include <torch/torch.h>

#include "common/error.h"

namespace lmsweep {

namespace {

std::string shape_of(const at::Tensor& t) {
  if (!t.defined()) return "undefined";
  std::string s = "[";
  for (int64_t i = 0; i < t.dim(); ++i) s += (i ? ", " : "") + std::to_string(t.size(i));
  return s + "]";
}

}  // namespace

void validate(const BalancedAsymmetricLossOptions& opt) {
  LMSWEEP_CHECK(std::isfinite(opt.gamma_neg) && opt.gamma_neg >= 0,
                "loss option gamma_neg = {} is invalid: it must be a finite number >= 0",
                opt.gamma_neg);
  LMSWEEP_CHECK(std::isfinite(opt.gamma_pos) && opt.gamma_pos >= 0,
                "loss option gamma_pos = {} is invalid: it must be a finite number >= 0",
                opt.gamma_pos);
  LMSWEEP_CHECK(std::isfinite(opt.clip) && opt.clip >= 0 && opt.clip < 1,
                "loss option clip = {} is invalid: it must be in [0, 1) (0 disables clipping)",
                opt.clip);
  LMSWEEP_CHECK(std::isfinite(opt.eps) && opt.eps > 0 && opt.eps < 1,
                "loss option eps = {} is invalid: it must be in (0, 1) (the reference uses 1e-8)",
                opt.eps);
  // The reference asserts 0 < label_smoothing < 1 when smoothing is on (asl_loss.py).
  LMSWEEP_CHECK(std::isfinite(opt.label_smoothing) && opt.label_smoothing >= 0 &&
                    opt.label_smoothing < 1,
                "loss option label_smoothing = {} is invalid: it must be in [0, 1) (0 disables it)",
                opt.label_smoothing);
}

void validate(const LmClipLossOptions& opts) {
  LMSWEEP_CHECK(std::isfinite(opts.lambda) && opts.lambda >= 0,
                "loss option lambda = {} is invalid: it must be a finite number >= 0",
                opts.lambda);
  validate(opts.bal);
}

// Port of BalancedAsymmetricLossOptimized.forward (damilab/lm-clip, asl_loss.py), and of
// AsymmetricLossOptimized.forward with normalize_by_max = false, no weights, no smoothing.
// The ops and their order follow the reference so that values and gradients match it
// (clamp's gradient at the bounds, pow's at exponent 0, the gradient through x.max()).
at::Tensor balanced_asymmetric_loss(const at::Tensor& logits, const at::Tensor& targets,
                                    const at::Tensor& class_weights,
                                    const BalancedAsymmetricLossOptions& opt) {
  validate(opt);
  LMSWEEP_CHECK(logits.defined() && logits.dim() == 2 && logits.size(0) > 0 &&
                    logits.size(1) > 0,
                "asymmetric loss: logits must be a non-empty [B, C] tensor, got {}",
                shape_of(logits));
  LMSWEEP_CHECK(at::isFloatingType(logits.scalar_type()),
                "asymmetric loss: logits must be floating point, got {}",
                c10::toString(logits.scalar_type()));
  LMSWEEP_CHECK(targets.defined() && targets.sizes() == logits.sizes(),
                "asymmetric loss: targets must have the logits' shape {}, got {}",
                shape_of(logits), shape_of(targets));
  const int64_t num_classes = logits.size(1);

  const at::Tensor y = targets.to(logits.scalar_type());
  const at::Tensor anti_targets = 1.0 - y;
  // Label smoothing y_ls = (1 - a) * y + a / K; anti_targets stay unsmoothed, as in the reference.
  at::Tensor t = y;
  if (opt.label_smoothing > 0) {
    t = (1.0 - opt.label_smoothing) * y + opt.label_smoothing / static_cast<double>(num_classes);
  }

  // x / x.max(): the max of the whole matrix, not detached (the reference divides by x.max()).
  // amax: the same value and gradient (split evenly between ties), but its backward never
  // reads a value on the host (max()'s does on CPU, to test for NaN).
  const at::Tensor x = opt.normalize_by_max ? logits / logits.amax(at::IntArrayRef{}) : logits;
  const at::Tensor xs_pos = torch::sigmoid(x);
  at::Tensor xs_neg = 1.0 - xs_pos;
  if (opt.clip > 0) xs_neg = (xs_neg + opt.clip).clamp_max(1.0);

  at::Tensor loss = t * torch::log(xs_pos.clamp_min(opt.eps));
  if (opt.use_class_weights) {
    LMSWEEP_CHECK(class_weights.defined() && class_weights.dim() == 1 &&
                      class_weights.size(0) == num_classes,
                  "balanced asymmetric loss: class weights must be a [{}] tensor (one per "
                  "class), got {}; compute them with class_weights_from_counts or turn class "
                  "weights off",
                  num_classes, shape_of(class_weights));
    // The reference keeps the weights in float64 and multiplies in place: (w + 1) is formed
    // in the weights' dtype, the product lands in the loss' dtype.
    loss = loss * (class_weights.to(logits.device()) + 1.0).to(logits.scalar_type());
  }
  loss = loss + anti_targets * torch::log(xs_neg.clamp_min(opt.eps));

  if (opt.gamma_neg > 0 || opt.gamma_pos > 0) {
    auto focal_weight = [&] {
      const at::Tensor pt0 = xs_pos * t;
      const at::Tensor pt1 = xs_neg * anti_targets;
      // The base is >= 0 wherever the reference is finite; with label smoothing a saturated
      // negative (p < clip) makes it slightly negative and the reference's pow NaN. Clamping
      // gives the limit (weight 0) there and changes nothing elsewhere.
      return torch::pow((1.0 - pt0 - pt1).clamp_min(0.0), opt.gamma_pos * t + opt.gamma_neg * anti_targets);
    };
    at::Tensor w;
    if (opt.focal_weight_grad) {
      w = focal_weight();
    } else {
      torch::NoGradGuard no_grad;
      w = focal_weight();
    }
    loss = loss * w;
  }
  return -loss.mean();
}

BalancedAsymmetricLossOptions plain_asl_options(const BalancedAsymmetricLossOptions& opt) {
  BalancedAsymmetricLossOptions asl = opt;
  asl.use_class_weights = false;
  asl.label_smoothing = 0;
  asl.normalize_by_max = false;
  return asl;
}

// open_clip's ClipLoss with world_size 1, as copied into damilab/lm-clip's
// model_openai_clip.py: logits_per_text is computed as its own product, not as a transpose.
at::Tensor clip_contrastive_loss(const at::Tensor& image_features,
                                 const at::Tensor& text_features, const at::Tensor& logit_scale) {
  LMSWEEP_CHECK(image_features.defined() && image_features.dim() == 2 &&
                    image_features.size(0) > 0,
                "clip loss: image features must be a non-empty [B, D] tensor, got {}",
                shape_of(image_features));
  LMSWEEP_CHECK(text_features.defined() && text_features.sizes() == image_features.sizes(),
                "clip loss: text features must have the image features' shape {}, got {}",
                shape_of(image_features), shape_of(text_features));
  LMSWEEP_CHECK(logit_scale.defined() && logit_scale.numel() == 1,
                "clip loss: logit_scale must be a scalar tensor, got {}", shape_of(logit_scale));
  const at::Tensor logits_per_image = logit_scale * image_features.matmul(text_features.t());
  const at::Tensor logits_per_text = logit_scale * text_features.matmul(image_features.t());
  const at::Tensor labels = torch::arange(
      image_features.size(0), torch::TensorOptions().dtype(torch::kLong).device(image_features.device()));
  namespace F = torch::nn::functional;
  return (F::cross_entropy(logits_per_image, labels) + F::cross_entropy(logits_per_text, labels)) /
         2.0;
}

// dataset_loaders/voc_mlt.py: class_weights[c] = len(image_paths) / occurrences (float64),
// then ** class_weights_power, then / max. The reference divides by zero for an absent class;
// we refuse instead.
at::Tensor class_weights_from_counts(const std::vector<int64_t>& counts, int64_t num_images,
                                     double power, const std::vector<std::string>& names) {
  LMSWEEP_CHECK(!counts.empty(), "class weights: no class counts given (0 classes)");
  LMSWEEP_CHECK(num_images > 0,
                "class weights: the training split has {} images; class weights need at least one",
                num_images);
  LMSWEEP_CHECK(std::isfinite(power) && power >= 0,
                "class weights: power s = {} is invalid: it must be a finite number >= 0", power);
  LMSWEEP_CHECK(names.empty() || names.size() == counts.size(),
                "class weights: {} class names for {} class counts", names.size(), counts.size());
  auto label = [&](size_t c) {
    return names.empty() ? std::to_string(c) : std::to_string(c) + " (" + names[c] + ")";
  };
  std::vector<double> w(counts.size());
  for (size_t c = 0; c < counts.size(); ++c) {
    LMSWEEP_CHECK(counts[c] > 0,
                  "class {} has no training image: class weight undefined; drop the class from "
                  "the labels file or turn class weights off",
                  label(c));
    LMSWEEP_CHECK(counts[c] <= num_images,
                  "class {} is counted in {} training images but the split has only {}",
                  label(c), counts[c], num_images);
    w[c] = std::pow(static_cast<double>(num_images) / static_cast<double>(counts[c]), power);
  }
  const double max_w = *std::max_element(w.begin(), w.end());
  at::Tensor out = torch::empty({static_cast<int64_t>(w.size())}, torch::kFloat64);
  auto acc = out.accessor<double, 1>();
  for (size_t c = 0; c < w.size(); ++c) acc[static_cast<int64_t>(c)] = w[c] / max_w;
  return out;
}

namespace {
constexpr const char* kValidLossKinds = "clip, asl, bal, clip+asl, clip+bal";
}

LossKind parse_loss_kind(const std::string& name) {
  if (name == "clip") return LossKind::Clip;
  if (name == "asl") return LossKind::Asl;
  if (name == "bal") return LossKind::Bal;
  if (name == "clip+asl") return LossKind::ClipAsl;
  if (name == "clip+bal") return LossKind::ClipBal;
  throw_error("unknown loss '{}': valid losses are {}", name, kValidLossKinds);
}

std::string to_string(LossKind kind) {
  switch (kind) {
    case LossKind::Clip: return "clip";
    case LossKind::Asl: return "asl";
    case LossKind::Bal: return "bal";
    case LossKind::ClipAsl: return "clip+asl";
    case LossKind::ClipBal: return "clip+bal";
  }
  throw_error("invalid LossKind value {}", static_cast<int>(kind));
}

// model_openai_clip.py, OpenAICLIPModel.forward: loss = sum of the configured loss functions,
// the asl/bal one multiplied by asl_mul (ASLLossWrapper); train.py builds
// BalancedAsymmetricLossOptimized for "bal" and AsymmetricLossOptimized for "asl".
at::Tensor lmclip_loss(const at::Tensor& image_features, const at::Tensor& caption_features,
                       const at::Tensor& logits, const at::Tensor& targets,
                       const at::Tensor& class_weights, const at::Tensor& logit_scale,
                       const LmClipLossOptions& opts) {
  validate(opts);
  const bool with_clip = opts.kind == LossKind::Clip || opts.kind == LossKind::ClipAsl ||
                         opts.kind == LossKind::ClipBal;
  const bool with_bal = opts.kind == LossKind::Bal || opts.kind == LossKind::ClipBal;
  const bool with_asl = opts.kind == LossKind::Asl || opts.kind == LossKind::ClipAsl;

  at::Tensor total;
  if (with_clip) total = clip_contrastive_loss(image_features, caption_features, logit_scale);
  if (with_bal || with_asl) {
    BalancedAsymmetricLossOptions o = opts.bal;
    if (with_asl) {
      o = plain_asl_options(opts.bal);
      o.normalize_by_max = opts.asl_normalize_by_max;
    }
    at::Tensor term = opts.lambda * balanced_asymmetric_loss(logits, targets, class_weights, o);
    total = total.defined() ? total + term : term;
  }
  return total;
}

}  // namespace lmsweep
