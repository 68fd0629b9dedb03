// An expert shard's work on a device (`rampartd --role shard --device cuda:N`): the (row, expert) items of a
// shard_batch computed by the device program's ops (gpu/exact_ops.hpp, fp32: swiglu_op, then experts_down_op
// with weight 1), so an item's output has the same bits on whichever device shard computes it. The device holds
// only the experts this shard has been asked for: warm() uploads them for every MoE layer (a shard warms its own
// at start), and a batch naming another one uploads it first (a replica placed here by rebalancing).
#pragma once

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "engine/device_forward.hpp"
#include "gpu/exact_ops.hpp"
#include "gpu/weight_store.hpp"
#include "shards/shard_compute.hpp"

namespace rampart::gpu {

template <class Exec>
class device_experts final : public model::expert_compute {
 public:
  // W (and the checkpoint behind it) must outlive this; only the experts asked for are copied to the device.
  device_experts(Exec exec, std::shared_ptr<const model::model_weights> w, int hidden)
      : exec_(std::move(exec)), w_(std::move(w)), hidden_(hidden), n_experts_(model::count_experts(*w_)) {
    for (size_t l = 0; l < w_->layers.size(); ++l)
      if (w_->layers[l].is_moe) layers_.emplace_back(static_cast<int>(l), n_experts_);
  }
  ~device_experts() override {
    for (scratch_buffer* b : {&b_x_, &b_ids_, &b_ones_, &b_h_, &b_out_})
      if (b->p != nullptr) exec_.release(b->p);
  }

  int n_experts() const override { return n_experts_; }
  size_t device_bytes() const { return store_.bytes(); }  // expert weights held
  int64_t experts_held() const {
    int64_t n = 0;
    for (const layer_experts& L : layers_)
      for (bool h : L.held) n += h ? 1 : 0;
    return n;
  }

  bool warm(const std::vector<int32_t>& experts, std::string* err) override {
    for (int32_t e : experts)
      if (e < 0 || e >= n_experts_) {
        *err = "expert " + std::to_string(e) + " is outside [0, " + std::to_string(n_experts_) + ")";
        return false;
      }
    try {
      for (layer_experts& L : layers_)
        for (int32_t e : experts) hold(L, e);
      exec_.finish();
    } catch (const model::device_failure& f) {
      *err = std::string("device: ") + f.what();
      return false;
    }
    return true;
  }

  bool run(model::shard_batch& b, std::string* err) override {
    if (std::string bad = model::check_batch(*w_, hidden_, n_experts_, b); !bad.empty()) {
      *err = std::move(bad);
      return false;
    }
    const auto t0 = std::chrono::steady_clock::now();
    const int64_t D = hidden_, n = b.n_items;
    if (b.out.size() < static_cast<size_t>(n * D)) b.out.resize(static_cast<size_t>(n * D));
    if (n > 0) {
      try {
        layer_experts* L = nullptr;
        for (layer_experts& l : layers_)
          if (l.layer == b.layer) L = &l;
        for (int64_t i = 0; i < n; ++i) hold(*L, b.item_expert[static_cast<size_t>(i)]);
        // Each item's row, gathered (as the CPU shard does), then the experts over the items.
        x_h_.resize(static_cast<size_t>(n * D));
        for (int64_t i = 0; i < n; ++i)
          std::copy_n(&b.rows[static_cast<size_t>(b.item_row[static_cast<size_t>(i)]) * D], D, &x_h_[i * D]);
        const int64_t M = L->width;
        const float* x = put(b_x_, x_h_.data(), n * D);
        const int32_t* ids = put(b_ids_, b.item_expert.data(), n);
        ones_h_.assign(static_cast<size_t>(n), 1.0f);
        const float* ones = put(b_ones_, ones_h_.data(), n);
        float* h = grow<float>(b_h_, n * M);
        float* out = grow<float>(b_out_, n * D);
        exec_.each(n * M, swiglu_op{L->gates, L->ups, ids, x, D, 1, M, h});
        exec_.each(n * D, experts_down_op{L->downs, ids, ones, h, D, 1, M, out});
        exec_.finish();
        exec_.to_host(b.out.data(), out, sizeof(float) * static_cast<size_t>(n * D));
      } catch (const model::device_failure& f) {
        *err = std::string("device: ") + f.what();
        return false;
      }
    }
    b.compute_ns = static_cast<uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count());
    return true;
  }

 private:
  // One MoE layer: per expert its three matrices on the device (an empty dweight until held), as tables the
  // ops index by expert id.
  struct layer_experts {
    layer_experts(int l, int n) : layer(l), gate(static_cast<size_t>(n)), up(gate), down(gate), held(static_cast<size_t>(n)) {}
    int layer;
    int64_t width = 0;
    std::vector<dweight> gate, up, down;
    std::vector<bool> held;
    dweight *gates = nullptr, *ups = nullptr, *downs = nullptr;
  };

  void hold(layer_experts& L, int32_t e) {
    if (L.held[static_cast<size_t>(e)]) return;
    if (L.gates == nullptr) {  // the tables, once per layer
      L.gates = static_cast<dweight*>(store_.own(sizeof(dweight) * L.gate.size()));
      L.ups = static_cast<dweight*>(store_.own(sizeof(dweight) * L.gate.size()));
      L.downs = static_cast<dweight*>(store_.own(sizeof(dweight) * L.gate.size()));
    }
    const model::mlp_weights& m = w_->layers[static_cast<size_t>(L.layer)].moe.experts[static_cast<size_t>(e)];
    L.width = m.width();
    L.gate[static_cast<size_t>(e)] = store_.upload(m.gate);
    L.up[static_cast<size_t>(e)] = store_.upload(m.up);
    L.down[static_cast<size_t>(e)] = store_.upload(m.down);
    exec_.to_device(L.gates + e, &L.gate[static_cast<size_t>(e)], sizeof(dweight));
    exec_.to_device(L.ups + e, &L.up[static_cast<size_t>(e)], sizeof(dweight));
    exec_.to_device(L.downs + e, &L.down[static_cast<size_t>(e)], sizeof(dweight));
    L.held[static_cast<size_t>(e)] = true;
  }

  template <class T>
  T* grow(scratch_buffer& b, int64_t count) {
    return grow_buffer<T>(exec_, b, count);
  }
  template <class T>
  T* put(scratch_buffer& b, const T* src, int64_t count) {
    return put_buffer(exec_, b, src, count);
  }

  Exec exec_;
  weight_store<Exec> store_{&exec_};
  std::shared_ptr<const model::model_weights> w_;
  int hidden_;
  int n_experts_;
  std::vector<layer_experts> layers_;
  scratch_buffer b_x_, b_ids_, b_ones_, b_h_, b_out_;
  std::vector<float> x_h_, ones_h_;
};

}  // namespace rampart::gpu
