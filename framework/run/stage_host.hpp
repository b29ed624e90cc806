// The host side of a running stage: implements the shrink_host function table over one
// model state. Every call catches its own exceptions and answers with a status, since
// the caller is plugin code across the C boundary. It only translates: checking the C
// arguments and calling what does the work (model/surgery for graph edits, run/split_feed
// for samples and batches, run/train_spec and train/ for training, run/artifacts).
#pragma once

#include "cuda/cuda.hpp"
#include "devices/device.hpp"
#include "model/model.hpp"
#include "run/model_state.hpp"
#include "run/split_feed.hpp"

#include <shrink/abi.h>

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

namespace shrink {

class stage_host {
  public:
    /// On a cuda device, the device is opened here (throws when it cannot be) and the
    /// plugin gets its shrink_cuda table; the host's forward passes run there too.
    /// Artifacts the stage stores go to `artifacts.pool` and back `artifacts.facts`.
    stage_host(model_state& state, split_source data, std::string stage_id, uint64_t seed, bool read_only,
               device_choice device = {}, artifact_scope artifacts = {});

    const shrink_host* table() const { return &table_; }
    /// Where the stage's info and warning lines go instead of the console (the plan's
    /// preview shows them in its own place); debug lines stay on the console.
    using log_sink = std::function<void(int32_t level, const std::string& message)>;
    void capture_log(log_sink sink) { log_sink_ = std::move(sink); }
    const std::map<std::string, double>& results() const { return results_; }
    /// What the stage stored: these do not go stale by the stage's own weight changes.
    const std::set<artifact_key>& stored_artifacts() const { return stored_; }

  private:
    /// forward's work: a split through the model as it is now, events to the observer.
    void forward_pass(int32_t split, uint64_t max_samples, bool capture_layer_inputs, shrink_forward_observer observer,
                      void* user);
    static stage_host& self(void* ctx) { return *static_cast<stage_host*>(ctx); }
    void require_writable(const char* what) const;
    void require_same_graph(const char* what) const;

    static void log(void*, int32_t, const char*);
    static void progress(void*, const char*, uint64_t, uint64_t);
    static uint32_t layer_count(void*);
    static shrink_status layer_get(void*, uint32_t, shrink_layer_info*, shrink_error*);
    static shrink_status tensor_info(void*, const char*, shrink_tensor_info*, shrink_error*);
    static shrink_status tensor_read_f32(void*, const char*, float*, uint64_t, shrink_error*);
    static shrink_status tensor_dtype(void*, const char*, int32_t*, shrink_error*);
    static shrink_status tensor_read_rows_f32(void*, const char*, uint64_t, uint64_t, float*, shrink_error*);
    static shrink_status tensor_read_mask(void*, const char*, uint8_t*, uint64_t, shrink_error*);
    static shrink_status tensor_write_f32(void*, const char*, const float*, uint64_t, const uint8_t*, shrink_error*);
    static shrink_status tensor_write_quant(void*, const char*, const shrink_quant_tensor*, shrink_error*);
    static shrink_status tensor_write_table(void*, const char*, const shrink_table_tensor*, shrink_error*);
    static shrink_status layer_factorize(void*, const char*, uint64_t, const float*, const float*, shrink_error*);
    static shrink_status layer_set_input_quant(void*, const char*, float, int32_t, shrink_error*);
    static shrink_status layer_set_input_quant_per_token(void*, const char*, shrink_error*);
    static shrink_status stat_put(void*, const char*, const char*, const float*, uint64_t, shrink_error*);
    static shrink_status stat_get(void*, const char*, const char*, float*, uint64_t, uint64_t*, shrink_error*);
    static shrink_status artifact_put(void*, const char*, const char*, const shrink_artifact_info*, const void*, shrink_error*);
    static shrink_status artifact_find(void*, const char*, const char*, shrink_artifact_info*, int32_t*, shrink_error*);
    static shrink_status artifact_read(void*, const char*, const char*, uint64_t, uint64_t, void*, shrink_error*);
    static shrink_status token_bytes(void*, int32_t, uint32_t*, uint64_t, uint64_t*, shrink_error*);
    static shrink_status layer_io(void*, uint32_t, const char**, const char**, uint32_t, uint32_t*, shrink_error*);
    void put_artifact(const char* layer_name, const char* key, int32_t dtype, const std::vector<uint64_t>& shape, const void* data);
    const artifact* find_artifact(const char* layer_name, const char* key) const;
    static shrink_status forward(void*, int32_t, uint64_t, int32_t, shrink_forward_observer, void*, shrink_error*);
    static shrink_status forward_blocks(void*, int32_t, uint64_t, shrink_forward_observer, void*, shrink_error*);
    static shrink_status forward_trial(void*, int32_t, uint64_t, const shrink_trial_tensor*, uint32_t, shrink_forward_observer,
                                       void*, shrink_error*);
    static uint64_t model_size_bytes(void*);
    static shrink_status result_put(void*, const char*, double, shrink_error*);
    static shrink_status train(void*, const shrink_train_spec*, shrink_train_report*, shrink_error*);
    static shrink_status make_student(void*, double, shrink_error*);

    model_state& state_;
    split_source data_;
    std::string stage_id_;
    bool read_only_;
    bool in_block_pass_ = false;  // forward_blocks is running: weights may change, the graph may not
    device_choice device_;
    std::unique_ptr<cuda_stage_device> cuda_;
    artifact_scope artifacts_;
    std::set<artifact_key> stored_;
    shrink_host table_{};
    std::map<std::string, double> results_;
    log_sink log_sink_;
};

}  // namespace shrink
