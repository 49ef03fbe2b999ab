#include "model/checkpoint.h"

#include <caffe2/serialize/inline_container.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <unordered_map>
#include <variant>

#include <torch/script.h>
#include <torch/serialize.h>
#include <torch/torch.h>

#include "common/error.h"
#include "common/files.h"

namespace lmsweep {
namespace {

// ------------------------------------------------------------------------------------------
// A small reader for the pickle (data.pkl) of torch.save's zip format. LibTorch's own
// torch::pickle_load turns collections.OrderedDict (what state_dict() returns) into None before
// 2.1, so we read the opcodes torch.save emits ourselves: protocol 2 (torch.save's default)
// and the framing opcodes of 4/5. Objects other than dicts, lists, tuples, scalars, strings and
// tensors become opaque values; they are only an error if a tensor is expected there.
struct PyValue;
using PyRef = std::shared_ptr<PyValue>;
struct PyGlobal { std::string module, name; };
struct PyOpaque { std::string what; };
struct PyValue {
  std::variant<std::monostate, bool, int64_t, double, std::string, std::vector<PyRef>,  // tuple/list
               std::vector<std::pair<PyRef, PyRef>>,                                   // dict
               PyGlobal, at::Tensor, PyOpaque>
      v;
};
PyRef make(decltype(PyValue::v) v) { return std::make_shared<PyValue>(PyValue{std::move(v)}); }

c10::ScalarType storage_dtype(const std::string& name, const std::string& source) {
  static const std::map<std::string, c10::ScalarType> kTypes = {
      {"FloatStorage", at::kFloat},   {"HalfStorage", at::kHalf},   {"BFloat16Storage", at::kBFloat16},
      {"DoubleStorage", at::kDouble}, {"LongStorage", at::kLong},   {"IntStorage", at::kInt},
      {"ShortStorage", at::kShort},   {"CharStorage", at::kChar},   {"ByteStorage", at::kByte},
      {"BoolStorage", at::kBool}};
  auto it = kTypes.find(name);
  LMSWEEP_CHECK(it != kTypes.end(), "{}: unsupported tensor storage type torch.{}", source, name);
  return it->second;
}

class TorchSavePickle {
 public:
  TorchSavePickle(caffe2::serialize::PyTorchStreamReader& reader, std::string source)
      : reader_(reader), source_(std::move(source)) {}

  PyRef load(const std::string& data) {
    data_ = &data;
    pos_ = 0;
    while (true) {
      const uint8_t op = byte();
      switch (op) {
        case 0x80: byte(); break;                              // PROTO
        case 0x95: bytes(8); break;                            // FRAME
        case '.': return pop();                                // STOP
        case '(': marks_.push_back(stack_.size()); break;      // MARK
        case 'N': push(make(std::monostate{})); break;
        case 0x88: push(make(true)); break;
        case 0x89: push(make(false)); break;
        case 'J': { int32_t v; std::memcpy(&v, bytes(4), 4); push(make(int64_t{v})); break; }
        case 'K': push(make(int64_t{byte()})); break;
        case 'M': { uint16_t v; std::memcpy(&v, bytes(2), 2); push(make(int64_t{v})); break; }
        case 0x8a: {                                           // LONG1
          const uint8_t n = byte();
          const char* p = bytes(n);
          int64_t v = 0;
          for (int i = n - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(p[i]);
          if (n > 0 && n < 8 && (static_cast<uint8_t>(p[n - 1]) & 0x80)) v -= int64_t{1} << (8 * n);
          push(make(v));
          break;
        }
        case 'G': {                                            // BINFLOAT, big-endian
          const char* p = bytes(8);
          uint64_t bits = 0;
          for (int i = 0; i < 8; ++i) bits = (bits << 8) | static_cast<uint8_t>(p[i]);
          double d;
          std::memcpy(&d, &bits, 8);
          push(make(d));
          break;
        }
        case 'X': case 'T': { uint32_t n; std::memcpy(&n, bytes(4), 4); push(make(std::string(bytes(n), n))); break; }
        case 0x8c: case 'U': { const uint8_t n = byte(); push(make(std::string(bytes(n), n))); break; }
        case 0x8d: { uint64_t n; std::memcpy(&n, bytes(8), 8); push(make(std::string(bytes(n), n))); break; }
        case '}': push(make(std::vector<std::pair<PyRef, PyRef>>{})); break;
        case ']': case ')': push(make(std::vector<PyRef>{})); break;
        case 't': case 'l': push(make(pop_mark())); break;
        case 0x85: { auto a = pop(); push(make(std::vector<PyRef>{a})); break; }
        case 0x86: { auto b = pop(), a = pop(); push(make(std::vector<PyRef>{a, b})); break; }
        case 0x87: { auto c = pop(), b = pop(), a = pop(); push(make(std::vector<PyRef>{a, b, c})); break; }
        case 'a': { auto v = pop(); list(stack_.back()).push_back(v); break; }
        case 'e': { auto items = pop_mark(); auto& l = list(stack_.back()); l.insert(l.end(), items.begin(), items.end()); break; }
        case 's': { auto v = pop(), k = pop(); dict(stack_.back()).emplace_back(k, v); break; }
        case 'u': {
          auto items = pop_mark();
          auto& d = dict(stack_.back());
          for (size_t i = 0; i + 1 < items.size(); i += 2) d.emplace_back(items[i], items[i + 1]);
          break;
        }
        case 'q': memo_[byte()] = stack_.back(); break;                                   // BINPUT
        case 'r': { uint32_t i; std::memcpy(&i, bytes(4), 4); memo_[i] = stack_.back(); break; }
        case 0x94: memo_[memo_.size()] = stack_.back(); break;                            // MEMOIZE
        case 'h': push(memo_.at(byte())); break;                                          // BINGET
        case 'j': { uint32_t i; std::memcpy(&i, bytes(4), 4); push(memo_.at(i)); break; }
        case 'c': {                                                                       // GLOBAL
          std::string module = line(), name = line();
          push(make(PyGlobal{module, name}));
          break;
        }
        case 0x93: { auto name = pop(), module = pop(); push(make(PyGlobal{str(module), str(name)})); break; }
        case 'R': { auto args = pop(), callable = pop(); push(reduce(callable, args)); break; }
        case 0x81: { auto args = pop(), cls = pop(); push(reduce(cls, args)); break; }      // NEWOBJ
        case 'b': pop(); break;  // BUILD: state of an object (OrderedDict._metadata): not needed
        case 'Q': push(persistent_load(pop())); break;                                   // BINPERSID
        default:
          throw_error("{}: unsupported pickle opcode 0x{:02x} in data.pkl: re-save the state dict "
                      "with torch.save(model.state_dict(), path)", source_, op);
      }
    }
  }

 private:
  uint8_t byte() { return static_cast<uint8_t>(*bytes(1)); }
  const char* bytes(size_t n) {
    LMSWEEP_CHECK(pos_ + n <= data_->size(), "{}: truncated data.pkl", source_);
    const char* p = data_->data() + pos_;
    pos_ += n;
    return p;
  }
  std::string line() {
    auto end = data_->find('\n', pos_);
    LMSWEEP_CHECK(end != std::string::npos, "{}: truncated data.pkl", source_);
    std::string s = data_->substr(pos_, end - pos_);
    pos_ = end + 1;
    return s;
  }
  void push(PyRef v) { stack_.push_back(std::move(v)); }
  PyRef pop() {
    LMSWEEP_CHECK(!stack_.empty(), "{}: malformed data.pkl (stack underflow)", source_);
    auto v = stack_.back();
    stack_.pop_back();
    return v;
  }
  std::vector<PyRef> pop_mark() {
    LMSWEEP_CHECK(!marks_.empty(), "{}: malformed data.pkl (no mark)", source_);
    const size_t m = marks_.back();
    marks_.pop_back();
    std::vector<PyRef> items(stack_.begin() + m, stack_.end());
    stack_.resize(m);
    return items;
  }
  std::vector<PyRef>& list(const PyRef& r) {
    auto* l = std::get_if<std::vector<PyRef>>(&r->v);
    LMSWEEP_CHECK(l, "{}: malformed data.pkl (append to a non-list)", source_);
    return *l;
  }
  std::vector<std::pair<PyRef, PyRef>>& dict(const PyRef& r) {
    if (std::holds_alternative<PyOpaque>(r->v)) r->v = std::vector<std::pair<PyRef, PyRef>>{};
    auto* d = std::get_if<std::vector<std::pair<PyRef, PyRef>>>(&r->v);
    LMSWEEP_CHECK(d, "{}: malformed data.pkl (setitem on a non-dict)", source_);
    return *d;
  }
  std::string str(const PyRef& r) {
    auto* s = std::get_if<std::string>(&r->v);
    LMSWEEP_CHECK(s, "{}: malformed data.pkl (expected a string)", source_);
    return *s;
  }
  int64_t integer(const PyRef& r) {
    auto* i = std::get_if<int64_t>(&r->v);
    LMSWEEP_CHECK(i, "{}: malformed data.pkl (expected an integer)", source_);
    return *i;
  }
  std::vector<int64_t> int_tuple(const PyRef& r) {
    std::vector<int64_t> out;
    for (const auto& e : list(r)) out.push_back(integer(e));
    return out;
  }

  PyRef reduce(const PyRef& callable, const PyRef& args) {
    const auto* g = std::get_if<PyGlobal>(&callable->v);
    if (!g) return make(PyOpaque{"object"});
    if (g->module == "collections" && g->name == "OrderedDict")
      return make(std::vector<std::pair<PyRef, PyRef>>{});
    if (g->module == "torch._utils" && g->name == "_rebuild_tensor_v2") {
      const auto& a = list(args);
      LMSWEEP_CHECK(a.size() >= 4, "{}: malformed tensor in data.pkl", source_);
      const auto* storage = std::get_if<at::Tensor>(&a[0]->v);
      LMSWEEP_CHECK(storage, "{}: malformed tensor storage in data.pkl", source_);
      return make(storage->as_strided(int_tuple(a[2]), int_tuple(a[3]), integer(a[1])));
    }
    if (g->module == "torch._utils" && g->name == "_rebuild_parameter") return list(args).at(0);
    // LibTorch's pickler tags typed containers: restore_type_tag(dict, "Dict[str, Tensor]").
    if (g->module == "torch.jit._pickle" && g->name == "restore_type_tag") return list(args).at(0);
    return make(PyOpaque{g->module + "." + g->name});
  }

  PyRef persistent_load(const PyRef& pid) {
    const auto& t = list(pid);
    LMSWEEP_CHECK(t.size() >= 5 && str(t[0]) == "storage", "{}: unsupported persistent id in data.pkl", source_);
    const auto* type = std::get_if<PyGlobal>(&t[1]->v);
    LMSWEEP_CHECK(type, "{}: malformed storage type in data.pkl", source_);
    const std::string key = str(t[2]);
    auto cached = storages_.find(key);
    if (cached != storages_.end()) return make(cached->second);
    const auto dtype = storage_dtype(type->name, source_);
    const int64_t numel = integer(t[4]);
    at::DataPtr ptr;
    size_t size = 0;
    std::tie(ptr, size) = reader_.getRecord("data/" + key);
    auto storage = at::empty({numel}, at::TensorOptions().dtype(dtype));
    LMSWEEP_CHECK(size >= static_cast<size_t>(numel) * storage.element_size(),
                  "{}: tensor record data/{} is shorter than its {} elements", source_, key, numel);
    std::memcpy(storage.data_ptr(), ptr.get(), static_cast<size_t>(numel) * storage.element_size());
    storages_.emplace(key, storage);
    return make(storage);
  }

  caffe2::serialize::PyTorchStreamReader& reader_;
  std::string source_;
  const std::string* data_ = nullptr;
  size_t pos_ = 0;
  std::vector<PyRef> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<size_t, PyRef> memo_;
  std::unordered_map<std::string, at::Tensor> storages_;
};

// The tensors of a (possibly wrapped) dict: {"state_dict": {...}} / {"model": {...}}.
void collect_tensors(const PyRef& root, const std::string& source, StateDict& out) {
  const auto* d = std::get_if<std::vector<std::pair<PyRef, PyRef>>>(&root->v);
  LMSWEEP_CHECK(d, "{}: the pickled object is not a dict of tensors (a state dict)", source);
  for (const auto& [k, v] : *d) {
    const auto* key = std::get_if<std::string>(&k->v);
    if (!key) continue;
    if ((*key == "state_dict" || *key == "model") &&
        std::holds_alternative<std::vector<std::pair<PyRef, PyRef>>>(v->v)) {
      collect_tensors(v, source, out);
      return;
    }
  }
  for (const auto& [k, v] : *d) {
    const auto* key = std::get_if<std::string>(&k->v);
    const auto* tensor = std::get_if<at::Tensor>(&v->v);
    if (!key || !tensor) continue;
    std::string name = *key;
    if (name.rfind("module.", 0) == 0) name = name.substr(7);  // saved from DistributedDataParallel
    out.tensors.emplace_back(name, *tensor);
  }
}

at::Tensor to_fp32_cpu(const at::Tensor& t) {
  auto c = t.detach().to(at::kCPU);
  if (c.is_floating_point()) c = c.to(at::kFloat);
  return c.contiguous().clone();
}

}  // namespace

const at::Tensor* StateDict::find(const std::string& name) const {
  for (const auto& [k, v] : tensors)
    if (k == name) return &v;
  return nullptr;
}

StateDict read_state_dict(const std::string& path) {
  LMSWEEP_CHECK(std::filesystem::exists(path), "{}: no such checkpoint file (--weights)", path);
  LMSWEEP_CHECK(!std::filesystem::is_directory(path), "{}: is a directory, expected a checkpoint file (--weights)", path);
  StateDict sd;
  sd.source = path;
  std::unique_ptr<caffe2::serialize::PyTorchStreamReader> reader;
  try {
    reader = std::make_unique<caffe2::serialize::PyTorchStreamReader>(path);
  } catch (const c10::Error&) {
    throw_error("{}: not a CLIP checkpoint (expected OpenAI's released .pt TorchScript archive, or a "
                "torch.save(state_dict) file in PyTorch's zip format)", path);
  }
  try {
    if (reader->hasRecord("constants.pkl") || reader->hasRecord("code/__torch__.py")) {
      sd.format = "torchscript";
      reader.reset();
      auto module = torch::jit::load(path, torch::kCPU);
      for (const auto& p : module.named_parameters(/*recurse=*/true)) sd.tensors.emplace_back(p.name, p.value);
      for (const auto& b : module.named_buffers(/*recurse=*/true)) sd.tensors.emplace_back(b.name, b.value);
    } else if (reader->hasRecord("data.pkl")) {
      sd.format = "state_dict";
      at::DataPtr ptr;
      size_t size = 0;
      std::tie(ptr, size) = reader->getRecord("data.pkl");
      const std::string pickle(static_cast<const char*>(ptr.get()), size);
      TorchSavePickle unpickler(*reader, path);
      collect_tensors(unpickler.load(pickle), path, sd);
    } else {
      throw_error("{}: a zip archive without data.pkl or TorchScript code: not a CLIP checkpoint", path);
    }
  } catch (const c10::Error& e) {
    std::string what = e.what_without_backtrace();
    throw_error("{}: cannot read the checkpoint: {}", path, what.substr(0, what.find('\n')));
  }
  LMSWEEP_CHECK(!sd.tensors.empty(), "{}: the checkpoint holds no tensors", path);
  for (auto& [name, t] : sd.tensors) t = to_fp32_cpu(t);
  return sd;
}

void load_clip_weights(Clip& model, const StateDict& weights) {
  std::unordered_map<std::string, const at::Tensor*> index;
  for (const auto& [k, v] : weights.tensors) index.emplace(k, &v);
  torch::NoGradGuard no_grad;
  auto copy = [&](const std::string& name, at::Tensor& dst, bool optional) {
    auto it = index.find(name);
    if (it == index.end()) {
      if (optional) return;
      throw_error("{}: missing key '{}' needed by the CLIP architecture read off this checkpoint", weights.source, name);
    }
    const auto& src = *it->second;
    LMSWEEP_CHECK(src.sizes() == dst.sizes(), "{}: key '{}' has shape {}, the model needs {}", weights.source, name,
                  fmt::join(src.sizes(), "x"), fmt::join(dst.sizes(), "x"));
    dst.copy_(src);
  };
  for (auto& p : model->named_parameters(/*recurse=*/true)) copy(p.key(), p.value(), false);
  // BatchNorm's num_batches_tracked is absent from some exports; the running stats are not.
  for (auto& b : model->named_buffers(/*recurse=*/true)) {
    const bool optional = b.key().size() > 19 && b.key().compare(b.key().size() - 19, 19, "num_batches_tracked") == 0;
    copy(b.key(), b.value(), optional);
  }
}

Clip load_clip(const std::string& path) {
  const StateDict sd = read_state_dict(path);
  std::map<std::string, std::vector<int64_t>> shapes;
  for (const auto& [k, v] : sd.tensors) shapes.emplace(k, v.sizes().vec());
  Clip model(ClipConfig::from_shapes(shapes, path));
  load_clip_weights(model, sd);
  return model;
}

void save_clip_weights(Clip& model, const std::string& path) {
  c10::Dict<std::string, at::Tensor> dict;
  for (const auto& p : model->named_parameters(true)) dict.insert(p.key(), p.value().detach().to(at::kCPU).contiguous());
  for (const auto& b : model->named_buffers(true)) dict.insert(b.key(), b.value().detach().to(at::kCPU).contiguous());
  const std::vector<char> bytes = torch::pickle_save(c10::IValue(dict));
  write_file_durably(path, bytes.data(), bytes.size(), "checkpoint");  // never half-written
}

}  // namespace lmsweep
