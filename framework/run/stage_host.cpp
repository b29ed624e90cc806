#include "run/stage_host.hpp"

#include "model/safetensors.hpp"
#include "model/surgery.hpp"
#include "plugins/abi_tables.hpp"
#include "plan/plan.hpp"
#include "run/block_feed.hpp"
#include "run/train_spec.hpp"
#include "runtime/runner.hpp"
#include "train/student.hpp"
#include "util/c_guard.hpp"
#include "util/console.hpp"
#include "util/files.hpp"
#include "util/random.hpp"
#include "util/text.hpp"

#include <cmath>
#include <stdexcept>

namespace shrink {

namespace {

std::string arg(const char* s, const char* what) {
    if (!s) throw std::invalid_argument(std::string(what) + " is NULL");
    return s;
}

void check_count(const tensor& t, const std::string& name, uint64_t count) {
    if (count != t.element_count())
        throw std::invalid_argument("tensor '" + name + "' has " + std::to_string(t.element_count()) +
                                    " elements, the call passed " + std::to_string(count));
}

}  // namespace

stage_host::stage_host(model_state& state, split_source data, std::string stage_id, uint64_t seed, bool read_only,
                       device_choice device, artifact_scope artifacts)
    : state_(state), data_(std::move(data)), stage_id_(std::move(stage_id)), read_only_(read_only), device_(device),
      artifacts_(std::move(artifacts)) {
    if (device_.cuda) cuda_ = open_cuda_stage_device(device_.ordinal);
    table_.struct_size = sizeof(shrink_host);
    table_.ctx = this;
    table_.seed = seed;
    table_.device = device_.cuda ? SHRINK_DEVICE_CUDA : SHRINK_DEVICE_CPU;
    table_.cuda = cuda_ ? cuda_->table() : nullptr;
    table_.log = &log;
    table_.progress = &progress;
    table_.layer_count = &layer_count;
    table_.layer_get = &layer_get;
    table_.tensor_info = &tensor_info;
    table_.tensor_read_f32 = &tensor_read_f32;
    table_.tensor_read_mask = &tensor_read_mask;
    table_.tensor_write_f32 = &tensor_write_f32;
    table_.tensor_write_quant = &tensor_write_quant;
    table_.layer_factorize = &layer_factorize;
    table_.layer_set_input_quant = &layer_set_input_quant;
    table_.stat_put = &stat_put;
    table_.stat_get = &stat_get;
    table_.forward = &forward;
    table_.model_size_bytes = &model_size_bytes;
    table_.result_put = &result_put;
    table_.train = &train;
    table_.make_student = &make_student;
    table_.tensor_dtype = &tensor_dtype;
    table_.tensor_read_rows_f32 = &tensor_read_rows_f32;
    table_.artifact_put = &artifact_put;
    table_.artifact_find = &artifact_find;
    table_.artifact_read = &artifact_read;
    table_.token_bytes = &token_bytes;
    table_.layer_io = &layer_io;
    table_.forward_blocks = &forward_blocks;
    table_.tensor_write_table = &tensor_write_table;
    table_.forward_trial = &forward_trial;
    table_.layer_set_input_quant_per_token = &layer_set_input_quant_per_token;
}

void stage_host::require_writable(const char* what) const {
    if (read_only_) throw std::logic_error(std::string("an evaluator may not change the model (") + what + ")");
}

void stage_host::require_same_graph(const char* what) const {
    if (in_block_pass_) throw std::logic_error(std::string("the graph may not change during forward_blocks (") + what + ")");
}

void stage_host::log(void* ctx, int32_t level, const char* message) {
    if (self(ctx).log_sink_ && level >= SHRINK_LOG_INFO) {
        self(ctx).log_sink_(level, message ? message : "");
        return;
    }
    const std::string text = "[" + self(ctx).stage_id_ + "] " + (message ? message : "");
    if (level >= SHRINK_LOG_WARNING) console::get().warning(text);
    else if (level == SHRINK_LOG_INFO) console::get().info("  " + text);
    else console::get().debug(text);
}

void stage_host::progress(void* ctx, const char* what, uint64_t done, uint64_t total) {
    console::get().progress(self(ctx).stage_id_ + (what ? std::string(" ") + what : ""), done, total);
}

uint32_t stage_host::layer_count(void* ctx) { return static_cast<uint32_t>(self(ctx).state_.net.layers.size()); }

shrink_status stage_host::layer_get(void* ctx, uint32_t index, shrink_layer_info* out, shrink_error* error) {
    return guarded(error, [&] {
        stage_host& h = self(ctx);
        const auto& layers = h.state_.net.layers;
        if (index >= layers.size()) throw std::out_of_range("layer index " + std::to_string(index) + " out of range");
        if (!out) throw std::invalid_argument("out is NULL");
        const layer& l = layers[index];
        shrink_layer_info info{};
        info.name = l.name.c_str();
        info.op = l.op.c_str();
        info.weight = l.weight.empty() ? nullptr : l.weight.c_str();
        info.bias = l.bias.empty() ? nullptr : l.bias.c_str();
        if (has_matrix(l.op)) {
            const tensor& w = h.state_.net.at(l.weight);
            info.out_features = w.rows();
            info.in_features = w.cols();
        }
        *out = info;
    });
}

shrink_status stage_host::layer_io(void* ctx, uint32_t index, const char** output, const char** inputs, uint32_t capacity,
                                   uint32_t* count, shrink_error* error) {
    return guarded(error, [&] {
        const auto& layers = self(ctx).state_.net.layers;
        if (index >= layers.size()) throw std::out_of_range("layer index " + std::to_string(index) + " out of range");
        if (!output || !count || (capacity && !inputs)) throw std::invalid_argument("output, count or inputs is NULL");
        const layer& l = layers[index];
        *output = l.output.c_str();  // the layer's own strings: they live as long as the model state
        *count = uint32_t(1 + l.more_inputs.size());
        for (uint32_t i = 0; i < std::min(capacity, *count); ++i) inputs[i] = (i == 0 ? l.input : l.more_inputs[i - 1]).c_str();
    });
}

shrink_status stage_host::tensor_info(void* ctx, const char* name, shrink_tensor_info* out, shrink_error* error) {
    return guarded(error, [&] {
        const tensor& t = self(ctx).state_.net.at(arg(name, "name"));
        shrink_tensor_info info{};
        info.ndim = static_cast<uint32_t>(t.shape.size());
        for (size_t d = 0; d < t.shape.size(); ++d) info.shape[d] = t.shape[d];
        info.encoding = (t.quant ? SHRINK_ENCODING_QUANTIZED : 0u) | (t.sparse() ? SHRINK_ENCODING_SPARSE : 0u);
        info.bits = t.quant ? t.quant->bits : t.type == dtype::f32 ? 32 : 16;
        info.stored_bytes = t.stored_bytes();
        *out = info;
    });
}

shrink_status stage_host::tensor_read_f32(void* ctx, const char* name, float* dst, uint64_t count, shrink_error* error) {
    return guarded(error, [&] {
        const std::string n = arg(name, "name");
        const tensor& t = self(ctx).state_.net.at(n);
        check_count(t, n, count);
        t.decode_range(0, count, dst);
    });
}

shrink_status stage_host::tensor_dtype(void* ctx, const char* name, int32_t* out, shrink_error* error) {
    return guarded(error, [&] {
        const tensor& t = self(ctx).state_.net.at(arg(name, "name"));
        switch (t.stored_type()) {
            case dtype::f32: *out = SHRINK_DTYPE_F32; break;
            case dtype::f16: *out = SHRINK_DTYPE_F16; break;
            case dtype::bf16: *out = SHRINK_DTYPE_BF16; break;
            case dtype::i8: *out = SHRINK_DTYPE_I8; break;
            case dtype::i4: *out = SHRINK_DTYPE_I4; break;
            case dtype::u8: throw std::logic_error("a tensor stored as u8");
        }
    });
}

shrink_status stage_host::tensor_read_rows_f32(void* ctx, const char* name, uint64_t first_row, uint64_t row_count, float* dst,
                                               shrink_error* error) {
    return guarded(error, [&] {
        const std::string n = arg(name, "name");
        const tensor& t = self(ctx).state_.net.at(n);
        if (!dst && row_count) throw std::invalid_argument("dst is NULL");
        if (first_row > t.rows() || row_count > t.rows() - first_row)
            throw std::invalid_argument("rows [" + std::to_string(first_row) + ", " + std::to_string(first_row + row_count) +
                                        ") are outside tensor '" + n + "', which has " + std::to_string(t.rows()));
        const uint64_t begin = first_row * t.cols(), count = row_count * t.cols();
        t.decode_range(begin, count, dst);
        // A stage reading by rows is streaming through the weight: the rows' pages of a mapped
        // model file need not stay resident once decoded (read again, they come back from the
        // file), so a weight larger than memory can be worked through.
        if (!t.quant && t.type == dtype::f32 && t.values.is_view()) release_mapped_pages(t.values.data() + begin, count * 4);
        if (!t.quant && t.type != dtype::f32 && t.half.is_view()) release_mapped_pages(t.half.data() + begin, count * 2);
    });
}

shrink_status stage_host::tensor_read_mask(void* ctx, const char* name, uint8_t* dst, uint64_t count, shrink_error* error) {
    return guarded(error, [&] {
        const std::string n = arg(name, "name");
        const tensor& t = self(ctx).state_.net.at(n);
        check_count(t, n, count);
        if (t.sparse()) std::copy(t.mask.begin(), t.mask.end(), dst);
        else std::fill(dst, dst + count, uint8_t{1});
    });
}

shrink_status stage_host::tensor_write_f32(void* ctx, const char* name, const float* src, uint64_t count,
                                           const uint8_t* mask, shrink_error* error) {
    return guarded(error, [&] {
        stage_host& h = self(ctx);
        h.require_writable("tensor_write_f32");
        const std::string n = arg(name, "name");
        tensor& t = h.state_.net.at(n);
        check_count(t, n, count);
        t = dense_tensor(n, t.shape, src, count, mask);
    });
}

shrink_status stage_host::tensor_write_quant(void* ctx, const char* name, const shrink_quant_tensor* q, shrink_error* error) {
    return guarded(error, [&] {
        stage_host& h = self(ctx);
        h.require_writable("tensor_write_quant");
        const std::string n = arg(name, "name");
        if (!q || !q->values || !q->scales) throw std::invalid_argument("incomplete quantized tensor");
        tensor& t = h.state_.net.at(n);
        const quant_spec spec{q->bits, q->symmetric != 0, q->group_size};
        std::vector<int8_t> zeros;
        if (q->zero_points) zeros.assign(q->zero_points, q->zero_points + q->scale_count);
        try {
            t = make_quantized(t, spec, std::vector<int8_t>(q->values, q->values + q->value_count),
                               std::vector<float>(q->scales, q->scales + q->scale_count), std::move(zeros));
        } catch (const std::runtime_error& e) {
            throw std::runtime_error("tensor '" + n + "': " + e.what());
        }
    });
}

shrink_status stage_host::tensor_write_table(void* ctx, const char* name, const shrink_table_tensor* arg_table, shrink_error* error) {
    return guarded(error, [&] {
        stage_host& h = self(ctx);
        h.require_writable("tensor_write_table");
        const std::string n = arg(name, "name");
        const shrink_table_tensor tt = abi::read_table(arg_table, sizeof(shrink_table_tensor), "the table tensor");
        if (!tt.codes || !tt.kind) throw std::invalid_argument("incomplete table tensor");
        if ((tt.scale_count && !tt.scales) || (tt.table_count && !tt.table)) throw std::invalid_argument("incomplete table tensor");
        tensor& t = h.state_.net.at(n);
        quant_spec spec;
        spec.bits = tt.bits;
        spec.group_size = tt.group_size;
        spec.table = tt.kind;
        spec.books = tt.books;
        spec.double_quant = tt.double_quant != 0;
        try {
            t = make_table_quantized(t, spec, std::vector<int8_t>(tt.codes, tt.codes + tt.code_count),
                                     std::vector<float>(tt.scales, tt.scales + tt.scale_count),
                                     std::vector<float>(tt.table, tt.table + tt.table_count));
        } catch (const std::runtime_error& e) {
            throw std::runtime_error("tensor '" + n + "': " + e.what());
        }
    });
}

shrink_status stage_host::layer_factorize(void* ctx, const char* layer_name, uint64_t rank, const float* first,
                                          const float* second, shrink_error* error) {
    return guarded(error, [&] {
        stage_host& h = self(ctx);
        h.require_writable("layer_factorize");
        h.require_same_graph("layer_factorize");
        factorize_layer(h.state_.net, arg(layer_name, "layer"), rank, first, second);
    });
}

shrink_status stage_host::layer_set_input_quant(void* ctx, const char* layer_name, float scale, int32_t zero_point,
                                                shrink_error* error) {
    return guarded(error, [&] {
        stage_host& h = self(ctx);
        h.require_writable("layer_set_input_quant");
        h.require_same_graph("layer_set_input_quant");
        set_input_quantization(h.state_.net, arg(layer_name, "layer"), scale, zero_point);
    });
}

shrink_status stage_host::layer_set_input_quant_per_token(void* ctx, const char* layer_name, shrink_error* error) {
    return guarded(error, [&] {
        stage_host& h = self(ctx);
        h.require_writable("layer_set_input_quant_per_token");
        h.require_same_graph("layer_set_input_quant_per_token");
        set_input_quantization_per_token(h.state_.net, arg(layer_name, "layer"));
    });
}

void stage_host::put_artifact(const char* layer_name, const char* key, int32_t dtype, const std::vector<uint64_t>& shape,
                              const void* data) {
    const std::string l = arg(layer_name, "layer"), k = arg(key, "key");
    if (!state_.net.find_layer(l)) throw std::invalid_argument("no layer '" + l + "'");
    if (k.empty()) throw std::invalid_argument("the artifact key is empty");
    state_.artifacts[{l, k}] = accept_artifact(artifacts_, stage_id_, dtype, shape, data);
    stored_.insert({l, k});
}

const artifact* stage_host::find_artifact(const char* layer_name, const char* key) const {
    auto it = state_.artifacts.find({arg(layer_name, "layer"), arg(key, "key")});
    return it == state_.artifacts.end() ? nullptr : it->second.get();
}

// The statistics calls of the first release are f32 vectors among the artifacts.
shrink_status stage_host::stat_put(void* ctx, const char* layer_name, const char* key, const float* values,
                                   uint64_t count, shrink_error* error) {
    return guarded(error, [&] { self(ctx).put_artifact(layer_name, key, SHRINK_DTYPE_F32, {count}, values); });
}

shrink_status stage_host::stat_get(void* ctx, const char* layer_name, const char* key, float* dst, uint64_t capacity,
                                   uint64_t* count, shrink_error* error) {
    return guarded(error, [&] {
        const artifact* a = self(ctx).find_artifact(layer_name, key);
        if (a && a->meta().dtype != SHRINK_DTYPE_F32)
            throw std::invalid_argument(std::string("artifact '") + key + "' of layer '" + layer_name + "' is " +
                                        artifact_dtype_name(a->meta().dtype) + ", not f32: read it with artifact_read");
        const uint64_t n = a ? a->meta().bytes / sizeof(float) : 0;
        if (dst && n) a->read(0, std::min(n, capacity) * sizeof(float), dst);
        if (count) *count = n;
    });
}

shrink_status stage_host::artifact_put(void* ctx, const char* layer_name, const char* key, const shrink_artifact_info* info,
                                       const void* data, shrink_error* error) {
    return guarded(error, [&] {
        const shrink_artifact_info i = abi::read_table(info, SHRINK_ARTIFACT_INFO_SIZE_1, "the artifact info");
        if (i.rank < 1 || i.rank > SHRINK_ARTIFACT_MAX_RANK)
            throw std::invalid_argument("artifact rank " + std::to_string(i.rank) + " is outside [1, " +
                                        std::to_string(SHRINK_ARTIFACT_MAX_RANK) + "]");
        self(ctx).put_artifact(layer_name, key, i.dtype, std::vector<uint64_t>(i.shape, i.shape + i.rank), data);
    });
}

shrink_status stage_host::artifact_find(void* ctx, const char* layer_name, const char* key, shrink_artifact_info* out,
                                        int32_t* found, shrink_error* error) {
    return guarded(error, [&] {
        if (!found) throw std::invalid_argument("found is NULL");
        const artifact* a = self(ctx).find_artifact(layer_name, key);
        *found = a ? 1 : 0;
        if (!a || !out) return;
        if (out->struct_size < SHRINK_ARTIFACT_INFO_SIZE_1)
            throw std::invalid_argument("the artifact info's struct_size is below its first released size");
        shrink_artifact_info i{};
        i.struct_size = sizeof i;
        i.dtype = a->meta().dtype;
        i.rank = uint32_t(a->meta().shape.size());
        std::copy(a->meta().shape.begin(), a->meta().shape.end(), i.shape);
        i.bytes = a->meta().bytes;
        abi::write_table(out, i);
    });
}

shrink_status stage_host::artifact_read(void* ctx, const char* layer_name, const char* key, uint64_t offset, uint64_t count,
                                        void* dst, shrink_error* error) {
    return guarded(error, [&] {
        const artifact* a = self(ctx).find_artifact(layer_name, key);
        if (!a) throw std::invalid_argument(std::string("layer '") + layer_name + "' has no artifact '" + key + "'");
        if (count && !dst) throw std::invalid_argument("dst is NULL");
        a->read(offset, count, dst);
    });
}

namespace {

/// A plugin's forward observer, called by the host: its error becomes the host's exception.
class observer_call {
  public:
    observer_call(shrink_forward_observer observer, void* user) : observer_(observer), user_(user) {
        if (!observer) throw std::invalid_argument("observer is NULL");
    }
    void operator()(const shrink_forward_event& ev) const {
        shrink_error inner{};
        if (observer_(user_, &ev, &inner) != SHRINK_OK) throw std::runtime_error(inner.message);
    }
    /// LAYER_INPUT events.
    runner::layer_input_fn layer_inputs() const {
        return [this](const std::string& layer, const float* data, int64_t n, int64_t cols) {
            shrink_forward_event ev{};
            ev.kind = SHRINK_FORWARD_LAYER_INPUT;
            ev.layer = layer.c_str();
            ev.data = data;
            ev.rows = uint64_t(n);
            ev.cols = uint64_t(cols);
            (*this)(ev);
        };
    }

  private:
    shrink_forward_observer observer_;
    void* user_;
};

}  // namespace

shrink_status stage_host::forward(void* ctx, int32_t split, uint64_t max_samples, int32_t capture_layer_inputs,
                                  shrink_forward_observer observer, void* user, shrink_error* error) {
    return guarded(error, [&] { self(ctx).forward_pass(split, max_samples, capture_layer_inputs != 0, observer, user); });
}

void stage_host::forward_pass(int32_t split, uint64_t max_samples, bool capture_layer_inputs, shrink_forward_observer observer,
                              void* user) {
    if (split != SHRINK_SPLIT_CALIBRATION && split != SHRINK_SPLIT_EVALUATION)
        throw std::invalid_argument("unknown split " + std::to_string(split));
    const split_view& view = data_(static_cast<shrink_split>(split));
    const std::unique_ptr<runner> run = make_runner(state_.net, device_);
    const observer_call emit(observer, user);
    batch_observer batches;
    if (capture_layer_inputs) batches.on_layer_input = emit.layer_inputs();
    batches.on_output = [&](const float* out, int64_t rows, int64_t cols, const int32_t* labels, double seconds) {
        shrink_forward_event ev{};
        ev.kind = SHRINK_FORWARD_OUTPUT;
        ev.data = out;
        ev.rows = uint64_t(rows);
        ev.cols = uint64_t(cols);
        ev.labels = labels;
        ev.seconds = seconds;
        emit(ev);
    };
    const char* what = split == SHRINK_SPLIT_CALIBRATION ? "calibration" : "evaluation";
    batches.on_progress = [&](uint64_t done, uint64_t total) { progress(this, what, done, total); };
    forward_batches(state_.net, view, max_samples, *run, batches);
}

shrink_status stage_host::forward_trial(void* ctx, int32_t split, uint64_t max_samples, const shrink_trial_tensor* tensors,
                                        uint32_t count, shrink_forward_observer observer, void* user, shrink_error* error) {
    return guarded(error, [&] {
        stage_host& h = self(ctx);
        if (count && !tensors) throw std::invalid_argument("forward_trial: no tensors");
        if (h.in_block_pass_) throw std::logic_error("forward_trial may not run inside forward_blocks");
        // The tensors as they are, swapped back whatever happens: the trial values live
        // only for this pass, so a stage that only measures (or an evaluator) may call it.
        std::vector<std::pair<std::string, tensor>> saved;
        struct restore {
            model_state& state;
            std::vector<std::pair<std::string, tensor>>& saved;
            ~restore() {
                for (auto& [name, t] : saved) std::swap(state.net.at(name), t);
            }
        } guard{h.state_, saved};
        for (uint32_t i = 0; i < count; ++i) {
            const std::string n = arg(tensors[i].name, "name");
            if (!tensors[i].values) throw std::invalid_argument("forward_trial: tensor '" + n + "' has no values");
            for (const auto& s : saved)
                if (s.first == n) throw std::invalid_argument("forward_trial: tensor '" + n + "' given twice");
            tensor& t = h.state_.net.at(n);
            check_count(t, n, tensors[i].count);
            tensor trial = dense_tensor(n, t.shape, tensors[i].values, tensors[i].count, nullptr);
            std::swap(t, trial);
            saved.emplace_back(n, std::move(trial));
        }
        h.forward_pass(split, max_samples, false, observer, user);
    });
}

shrink_status stage_host::forward_blocks(void* ctx, int32_t split, uint64_t max_samples, shrink_forward_observer observer, void* user,
                                         shrink_error* error) {
    return guarded(error, [&] {
        stage_host& h = self(ctx);
        if (split != SHRINK_SPLIT_CALIBRATION && split != SHRINK_SPLIT_EVALUATION)
            throw std::invalid_argument("unknown split " + std::to_string(split));
        if (h.in_block_pass_) throw std::logic_error("forward_blocks is already running");
        const split_view& view = h.data_(static_cast<shrink_split>(split));
        const observer_call emit(observer, user);
        block_observer blocks;
        blocks.on_layer_input = emit.layer_inputs();
        blocks.on_block_end = [&](const engine::block& b, size_t index, size_t count) {
            shrink_forward_event ev{};
            ev.kind = SHRINK_FORWARD_BLOCK_END;
            ev.layer = b.name.c_str();
            ev.rows = uint64_t(index);
            ev.cols = uint64_t(count);
            emit(ev);
        };
        const std::string what = split == SHRINK_SPLIT_CALIBRATION ? "calibration" : "evaluation";
        blocks.on_progress = [&](size_t index, size_t count, uint64_t done, uint64_t total) {
            // Progress over the whole pass, in samples: block k of n at sample s of S.
            progress(ctx, (what + ", block " + std::to_string(index + 1) + " of " + std::to_string(count)).c_str(),
                     uint64_t(index) * total + done, uint64_t(count) * total);
        };
        h.in_block_pass_ = true;
        try {
            const block_pass pass = shrink::forward_blocks(h.state_.net, view, max_samples, blocks);
            h.in_block_pass_ = false;
            console::get().debug("[" + h.stage_id_ + "] " + std::to_string(pass.blocks) + " blocks, " + std::to_string(pass.rerun) +
                                 " run again after their weights changed, " + format_bytes(pass.stream_bytes) + " held between blocks");
        } catch (...) {
            h.in_block_pass_ = false;
            throw;
        }
    });
}

shrink_status stage_host::token_bytes(void* ctx, int32_t split, uint32_t* dst, uint64_t capacity, uint64_t* vocab,
                                      shrink_error* error) {
    return guarded(error, [&] {
        if (split != SHRINK_SPLIT_CALIBRATION && split != SHRINK_SPLIT_EVALUATION && split != SHRINK_SPLIT_TRAINING)
            throw std::invalid_argument("unknown split " + std::to_string(split));
        if (!vocab) throw std::invalid_argument("vocab is NULL");
        if (capacity && !dst) throw std::invalid_argument("dst is NULL");
        const split_view& view = self(ctx).data_(static_cast<shrink_split>(split));
        if (!view.text) throw std::invalid_argument("the split's data is images, not text: it has no tokens");
        const std::vector<uint32_t>& bytes = view.text->token_bytes;
        std::copy_n(bytes.begin(), std::min<uint64_t>(capacity, bytes.size()), dst);
        *vocab = bytes.size();
    });
}

uint64_t stage_host::model_size_bytes(void* ctx) {
    try {
        return serialized_size(self(ctx).state_.net);
    } catch (...) {
        return 0;
    }
}

shrink_status stage_host::result_put(void* ctx, const char* key, double value, shrink_error* error) {
    return guarded(error, [&] {
        if (!std::isfinite(value)) throw std::invalid_argument(std::string("result '") + key + "' is not finite");
        self(ctx).results_[arg(key, "key")] = value;
    });
}

shrink_status stage_host::train(void* ctx, const shrink_train_spec* spec_arg, shrink_train_report* report, shrink_error* error) {
    return guarded(error, [&] {
        stage_host& h = self(ctx);
        h.require_writable("train");
        h.require_same_graph("train");
        // A plugin built against an older abi.h passes a smaller spec: what it does not know reads as zero.
        const shrink_train_spec spec_copy = abi::read_table(spec_arg, SHRINK_TRAIN_SPEC_SIZE_1, "the training spec");
        model& m = h.state_.net;
        train::fit_options f = fit_options_of(spec_copy, m, h.state_.teacher.get(), h.table_.seed);
        const train::sample_source data = training_samples(h.data_(SHRINK_SPLIT_TRAINING), m);
        f.on_epoch = [&](int epoch, double loss) {
            progress(ctx, "training", uint64_t(epoch), uint64_t(f.epochs));
            console::get().debug("[" + h.stage_id_ + "] epoch " + std::to_string(epoch) + " loss " + format_double(loss));
        };
        const train::fit_result r = train::fit(m, data, f);
        if (report && report->struct_size >= SHRINK_TRAIN_REPORT_SIZE_1) {
            shrink_train_report out{};
            out.steps = uint64_t(r.steps);
            out.first_epoch_loss = r.epoch_loss.front();
            out.last_epoch_loss = r.epoch_loss.back();
            abi::write_table(report, out);  // never past the plugin's struct_size
        }
    });
}

shrink_status stage_host::make_student(void* ctx, double width_scale, shrink_error* error) {
    return guarded(error, [&] {
        stage_host& h = self(ctx);
        h.require_writable("make_student");
        h.require_same_graph("make_student");
        model student = shrink::make_student(h.state_.net, width_scale, derive_seed(h.table_.seed, "student"));
        h.state_.teacher = std::make_shared<const model>(std::move(h.state_.net));
        h.state_.teacher_from_stage = true;
        h.state_.net = std::move(student);
        h.state_.artifacts.clear();  // measured on the teacher, not the student
    });
}

}  // namespace shrink
