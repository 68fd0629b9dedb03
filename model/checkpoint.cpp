// checkpoint::open: config.json, then model.safetensors or the shards named by model.safetensors.index.json,
// each mmapped read-only and validated by parse_safetensors, then fp8 block scales linked to their matrices.
#include "model/checkpoint.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>

#include <nlohmann/json.hpp>

#include "base/file.hpp"

namespace rampart::model {
namespace {

const char* const single_file_name = "model.safetensors";
const char* const index_file_name = "model.safetensors.index.json";
const char* const scale_suffix = "_scale_inv";

bool file_exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode);
}

// config.json and model.safetensors.index.json (9 MiB for DeepSeek-V3's 163 files): far below this.
constexpr int64_t kMaxCheckpointJsonBytes = int64_t{64} << 20;

bool read_text(const std::string& path, std::string* out, load_error* err) {
  std::string why;
  if (read_regular_file(path, kMaxCheckpointJsonBytes, out, &why)) return true;
  err->message = path + ": " + why;
  return false;
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// A shard name from the index must name a file inside the checkpoint directory.
bool plain_file_name(const std::string& name) {
  return !name.empty() && name != "." && name != ".." && name.find('/') == std::string::npos &&
         name.find('\\') == std::string::npos && name.find('\0') == std::string::npos;
}

}  // namespace

struct checkpoint::mapped_file {
  std::string path;
  void* addr = nullptr;
  size_t size = 0;

  ~mapped_file() {
    if (addr) ::munmap(addr, size);
  }

  bool map(load_error* err) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      err->message = path + ": cannot open: " + std::strerror(errno);
      return false;
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
      ::close(fd);
      err->message = path + ": not a regular file";
      return false;
    }
    size = static_cast<size_t>(st.st_size);
    if (size < 8) {
      ::close(fd);
      err->message = path + ": file of " + std::to_string(size) + " bytes is too short for a header";
      return false;
    }
    void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
    const int map_errno = errno;
    ::close(fd);
    if (p == MAP_FAILED) {
      err->message = path + ": mmap failed: " + std::strerror(map_errno);
      return false;
    }
    addr = p;
    return true;
  }
};

checkpoint::~checkpoint() = default;

namespace {

// File name -> the tensors model.safetensors.index.json says it holds, when BASE has the index and no single
// file; otherwise the single file with no expectation (take what is there). *SHARDED says which.
bool expected_files(const std::string& base, std::map<std::string, std::vector<std::string>>* expected,
                    bool* sharded, load_error* err) {
  *sharded = !file_exists(base + single_file_name) && file_exists(base + index_file_name);
  if (!*sharded) {
    (*expected)[single_file_name];
    return true;
  }
  const std::string index_path = base + index_file_name;
  std::string text;
  if (!read_text(index_path, &text, err)) return false;
  const nlohmann::json index = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (index.is_discarded() || !index.is_object()) {
    err->message = index_path + ": not a valid JSON object";
    return false;
  }
  const auto map = index.find("weight_map");
  if (map == index.end() || !map->is_object() || map->empty()) {
    err->message = index_path + ": missing or empty weight_map";
    return false;
  }
  for (const auto& item : map->items()) {
    if (!item.value().is_string() || !plain_file_name(item.value().get<std::string>())) {
      err->message = index_path + ": tensor '" + item.key() + "': weight_map value is not a file name";
      return false;
    }
    (*expected)[item.value().get<std::string>()].push_back(item.key());
  }
  return true;
}

// Links every F8_E4M3 matrix with its F32 block scales; a scale tensor must belong to an F8_E4M3 matrix.
bool link_block_scales(std::unordered_map<std::string, tensor_view>& tensors, load_error* err) {
  const size_t n = std::strlen(scale_suffix);
  for (auto& [name, t] : tensors) {
    if (name.size() > n && name.compare(name.size() - n, n, scale_suffix) == 0) {
      const auto owner = tensors.find(name.substr(0, name.size() - n));
      if (owner == tensors.end() || owner->second.type != dtype::f8_e4m3) {
        err->message = t.file + ": tensor '" + name + "': block scales without an F8_E4M3 matrix '" +
                       name.substr(0, name.size() - n) + "'";
        return false;
      }
      continue;
    }
    if (t.type != dtype::f8_e4m3) continue;
    if (t.shape.size() != 2) {
      err->message =
          t.file + ": tensor '" + name + "': F8_E4M3 tensor must be 2-D, has shape " + shape_string(t.shape);
      return false;
    }
    const auto s = tensors.find(name + scale_suffix);
    if (s == tensors.end()) {
      err->message = t.file + ": tensor '" + name + "': F8_E4M3 tensor has no '" + name + scale_suffix + "'";
      return false;
    }
    const std::vector<int64_t> want = {(t.shape[0] + 127) / 128, (t.shape[1] + 127) / 128};
    if (s->second.type != dtype::f32 || s->second.shape != want) {
      err->message = s->second.file + ": tensor '" + s->first + "': block scales must be F32 " +
                     shape_string(want) + ", are " + dtype_name(s->second.type) + " " +
                     shape_string(s->second.shape);
      return false;
    }
    t.scale_inv = &s->second;
  }
  return true;
}

}  // namespace

bool checkpoint::map_file(const std::string& path, const std::vector<std::string>& expected, bool sharded,
                          load_error* err) {
  auto mf = std::make_unique<mapped_file>();
  mf->path = path;
  if (!file_exists(mf->path)) {
    err->message = mf->path + ": missing" +
                   (expected.empty() ? std::string() : " (shard holding tensor '" + expected.front() + "')");
    return false;
  }
  if (!mf->map(err)) return false;
  std::vector<tensor_view> views;
  if (!parse_safetensors(static_cast<const std::byte*>(mf->addr), mf->size, mf->path, &views, err)) return false;
  for (tensor_view& v : views) {
    if (tensors_.count(v.name)) {
      err->message = mf->path + ": tensor '" + v.name + "': also present in " + tensors_[v.name].file;
      return false;
    }
    const std::string name = v.name;
    tensors_.emplace(name, std::move(v));
    names_.push_back(name);
  }
  for (const std::string& n : expected) {
    const auto it = tensors_.find(n);
    if (it == tensors_.end() || it->second.file != mf->path) {
      err->message = mf->path + ": tensor '" + n + "': listed in " + index_file_name + " but not in this file";
      return false;
    }
  }
  if (sharded && views.size() != expected.size()) {
    err->message = mf->path + ": holds tensors that " + std::string(index_file_name) + " does not list";
    return false;
  }
  files_.push_back(std::move(mf));
  return true;
}

std::unique_ptr<checkpoint> checkpoint::open(const std::string& dir, load_error* err) {
  load_error local;
  if (!err) err = &local;
  std::unique_ptr<checkpoint> ck(new checkpoint());
  ck->dir_ = dir;
  const std::string base = dir.empty() || dir.back() == '/' ? dir : dir + "/";

  const std::string config_path = base + "config.json";
  std::string text;
  if (!read_text(config_path, &text, err)) return nullptr;
  std::string config_error;
  if (!model_config::parse(text, config_path, &ck->config_, &config_error)) {
    err->message = config_error;
    return nullptr;
  }
  std::map<std::string, std::vector<std::string>> expected;
  bool sharded = false;
  if (!expected_files(base, &expected, &sharded, err)) return nullptr;
  for (const auto& [file_name, names] : expected) {
    if (!ck->map_file(base + file_name, names, sharded, err)) return nullptr;
  }
  if (!link_block_scales(ck->tensors_, err)) return nullptr;
  return ck;
}

const tensor_view* checkpoint::find(std::string_view name) const {
  const auto it = tensors_.find(std::string(name));
  return it == tensors_.end() ? nullptr : &it->second;
}

const tensor_view* checkpoint::require(std::string_view name, const std::vector<int64_t>& shape,
                                       load_error* err) const {
  const tensor_view* t = find(name);
  if (!t) {
    if (err) err->message = dir_ + ": tensor '" + std::string(name) + "' not found in the checkpoint";
    return nullptr;
  }
  if (t->shape != shape) {
    if (err)
      err->message = t->file + ": tensor '" + t->name + "': shape " + shape_string(t->shape) + ", expected " +
                     shape_string(shape);
    return nullptr;
  }
  return t;
}

size_t checkpoint::mapped_bytes() const {
  size_t total = 0;
  for (const auto& [name, t] : tensors_) total += t.nbytes;
  return total;
}

}  // namespace rampart::model
