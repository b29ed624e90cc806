// shrink plugin SDK: the C++ layer plugin authors write against.
//
// Header-only and compiled into the plugin, so nothing C++ crosses the boundary: every
// call below goes through the C ABI in <shrink/abi.h>. Exceptions thrown by a stage
// (or by an observer it passes to the host) are caught here and returned to the host as
// a status carrying the message; a failure reported by the host is rethrown here as
// shrink::plugin_error in the plugin's own binary.
//
// A plugin is one shared library with one SHRINK_PLUGIN(...) line:
//
//   shrink::plugin make_plugin() {
//       shrink::plugin p("my-quantizers", "1.0.0");
//       p.add(shrink::stage_type{ .name = "quantizer.mine", ... , .run = run_mine });
//       return p;
//   }
//   SHRINK_PLUGIN(make_plugin)
//
// Build it with shrink_add_plugin(NAME SOURCES...) from find_package(shrink).
#pragma once

#include <shrink/abi.h>
#include <shrink/cuda.hpp>

#include <boost/dll/alias.hpp>

#include <algorithm>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace shrink {

/// Thrown inside a plugin when a host call fails; its message is the host's.
class plugin_error : public std::runtime_error {
  public:
    using std::runtime_error::runtime_error;
};

namespace detail {

inline void set_error(shrink_error* error, const char* message) noexcept {
    if (error != nullptr) std::snprintf(error->message, sizeof error->message, "%s", message);
}

/// Runs f, turning any exception into a failed status: nothing may unwind into the host.
template <class F>
shrink_status guard(shrink_error* error, F&& f) noexcept {
    try {
        f();
        return SHRINK_OK;
    } catch (const std::exception& e) {
        set_error(error, e.what());
    } catch (...) {
        set_error(error, "unknown exception");
    }
    return SHRINK_FAILED;
}

inline void check(shrink_status status, const shrink_error& error) {
    if (status != SHRINK_OK) throw plugin_error(error.message);
}

}  // namespace detail

/// The stage's parameters, already checked by the host against their declarations.
class params {
  public:
    explicit params(const shrink_params* raw) : raw_(raw) {}

    int64_t integer(std::string_view name) const { return find(name, SHRINK_PARAM_INT).int_value; }
    double real(std::string_view name) const { return find(name, SHRINK_PARAM_FLOAT).float_value; }
    bool flag(std::string_view name) const { return find(name, SHRINK_PARAM_BOOL).int_value != 0; }
    std::string choice(std::string_view name) const { return find(name, SHRINK_PARAM_CHOICE).text; }
    /// Layer names; empty = every layer the stage works on.
    std::vector<std::string> layers(std::string_view name) const {
        std::vector<std::string> out;
        const std::string text = find(name, SHRINK_PARAM_LAYERS).text;
        for (size_t start = 0; start < text.size();) {
            const size_t end = std::min(text.find(',', start), text.size());
            out.push_back(text.substr(start, end - start));
            start = end + 1;
        }
        return out;
    }

  private:
    const shrink_param_value& find(std::string_view name, int32_t type) const {
        for (uint32_t i = 0; i < raw_->count; ++i) {
            const shrink_param_value& v = raw_->values[i];
            if (name == v.name) {
                if (v.type != type) throw plugin_error("parameter '" + std::string(name) + "' read with the wrong type");
                return v;
            }
        }
        throw plugin_error("parameter '" + std::string(name) + "' is not declared");
    }
    const shrink_params* raw_;
};

struct layer {
    std::string name;
    std::string op;
    std::string weight;
    std::string bias;
    uint64_t in_features = 0;   // the weight read as out_features rows of in_features
    uint64_t out_features = 0;
    // Its place in the graph (empty from a host older than shrink_host::layer_io): the
    // value it writes and the values it reads, its main input first. A value is written by
    // one layer, or is the model's input.
    std::string output;
    std::vector<std::string> inputs;

    /// Linear and conv layers: the ones with a weight matrix to compress. A conv's
    /// [out, in/group, kh, kw] weight reads as out rows of in/group*kh*kw.
    bool has_matrix() const { return op == "linear" || op == "conv"; }
};

/// A tensor in a table encoding (shrink_table_tensor): codes, and NF4's scales or k-means'
/// table; the host packs the codes (and with double_quant, codes the scales).
struct table_quantized {
    int32_t bits = 4;            // the codes' container: 4 or 8
    std::string kind;            // "nf4" or "kmeans"
    uint64_t group_size = 0;     // nf4
    uint64_t books = 0;          // kmeans: 1, or rows
    bool double_quant = false;   // nf4
    std::vector<int8_t> codes;   // entry index - 2^(bits-1)
    std::vector<float> scales;   // nf4
    std::vector<float> table;    // kmeans
};

/// A quantized tensor as a quantizer produces it: unpacked integers, the host packs.
struct quantized {
    int32_t bits = 8;
    bool symmetric = true;
    uint64_t group_size = 0;  // 0: one scale for the whole tensor
    std::vector<int8_t> values;
    std::vector<float> scales;
    std::vector<int8_t> zero_points;  // empty when symmetric

    /// Codes of a `grid_bits`-bit grid (2..8) in the container the host stores: 8 bits, or
    /// 4 for grids of 4 bits and fewer (no packed 3- or 2-bit encoding yet).
    static quantized of(int grid_bits, bool symmetric, uint64_t group_size, std::vector<int8_t> values, std::vector<float> scales,
                        std::vector<int8_t> zero_points) {
        return {grid_bits <= 4 ? 4 : 8, symmetric, group_size, std::move(values), std::move(scales), std::move(zero_points)};
    }
};

/// How to train, for model::train(); see shrink_train_spec for each field.
struct training {
    int epochs = 1;
    uint64_t batch = 128;
    uint64_t max_samples = 0;  // 0 = the whole training split
    std::string optimizer = "adamw";  // sgd | adamw
    double learning_rate = 1e-3;
    double momentum = 0.9;
    double weight_decay = 0;
    std::string schedule = "cosine";  // constant | cosine | step
    int step_epochs = 1;
    double step_gamma = 0.1;
    double distill_alpha = 0;  // weight of the distillation term; needs the kept teacher
    double temperature = 4;
    std::string hidden_pairs;  // "student_value:teacher_value,..."
    double hidden_weight = 0;
    bool batch_statistics = false;  // true for a model trained from scratch (a fresh student)
    /// Optional: what the forward pass reads in place of each weight named in transform_tensors.
    std::vector<std::string> transform_tensors;
    std::function<void(const std::string& tensor, const float* value, float* out, uint64_t rows, uint64_t cols)> transform;
};

struct train_report {
    uint64_t steps = 0;
    double first_epoch_loss = 0, last_epoch_loss = 0;
};

/// The model state a stage works on, through the host.
class model {
  public:
    explicit model(const shrink_host* host) : host_(host) {}

    std::vector<layer> layers() const {
        std::vector<layer> out;
        const uint32_t n = host_->layer_count(host_->ctx);
        for (uint32_t i = 0; i < n; ++i) {
            shrink_layer_info info{};
            call([&](shrink_error* e) { return host_->layer_get(host_->ctx, i, &info, e); });
            out.push_back({info.name, info.op, info.weight ? info.weight : "", info.bias ? info.bias : "",
                           info.in_features, info.out_features, {}, {}});
            if (offers(offsetof(shrink_host, layer_io)) && host_->layer_io) {
                const char* output = nullptr;
                const char* inputs[8] = {};
                uint32_t count = 0;
                call([&](shrink_error* e) { return host_->layer_io(host_->ctx, i, &output, inputs, 8, &count, e); });
                std::vector<const char*> all(inputs, inputs + std::min<uint32_t>(count, 8));
                if (count > 8) {  // a concat of many
                    all.resize(count);
                    call([&](shrink_error* e) { return host_->layer_io(host_->ctx, i, &output, all.data(), count, &count, e); });
                }
                out.back().output = output;
                for (const char* in : all) out.back().inputs.emplace_back(in);
            }
        }
        return out;
    }

    shrink_tensor_info info(const std::string& tensor) const {
        shrink_tensor_info out{};
        call([&](shrink_error* e) { return host_->tensor_info(host_->ctx, tensor.c_str(), &out, e); });
        return out;
    }

    static uint64_t element_count(const shrink_tensor_info& info) {
        uint64_t n = 1;
        for (uint32_t d = 0; d < info.ndim; ++d) n *= static_cast<uint64_t>(info.shape[d]);
        return n;
    }

    std::vector<float> read(const std::string& tensor) const {
        std::vector<float> out(element_count(info(tensor)));
        call([&](shrink_error* e) { return host_->tensor_read_f32(host_->ctx, tensor.c_str(), out.data(), out.size(), e); });
        return out;
    }

    /// The matrix a weight reads as: rows = its first dimension, cols = the rest (1-D: one row).
    static uint64_t rows_of(const shrink_tensor_info& info) { return info.ndim >= 2 ? uint64_t(info.shape[0]) : 1; }

    /// The type `tensor` is stored in: SHRINK_DTYPE_F32, F16 or BF16 (dense), I8 or I4 (the
    /// codes of a quantized tensor). read() and read_rows() widen any of them to float.
    int32_t dtype(const std::string& tensor) const {
        if (!offers(offsetof(shrink_host, tensor_dtype)) || !host_->tensor_dtype) {
            // A host from before the call knows only f32 and codes.
            const shrink_tensor_info i = info(tensor);
            return !(i.encoding & SHRINK_ENCODING_QUANTIZED) ? SHRINK_DTYPE_F32 : i.bits == 8 ? SHRINK_DTYPE_I8 : SHRINK_DTYPE_I4;
        }
        int32_t out = 0;
        call([&](shrink_error* e) { return host_->tensor_dtype(host_->ctx, tensor.c_str(), &out, e); });
        return out;
    }

    /// Rows [first, first + count) of the tensor read as a matrix, decoded to floats
    /// (count * cols values): work through a large weight a block of rows at a time
    /// without holding a float copy of all of it.
    std::vector<float> read_rows(const std::string& tensor, uint64_t first, uint64_t count) const {
        const shrink_tensor_info i = info(tensor);
        const uint64_t rows = rows_of(i), cols = rows ? element_count(i) / rows : 0;
        if (first > rows || count > rows - first) throw plugin_error("rows outside tensor '" + tensor + "'");
        if (!offers(offsetof(shrink_host, tensor_read_rows_f32)) || !host_->tensor_read_rows_f32) {
            const std::vector<float> all = read(tensor);  // an older host: read it whole
            return std::vector<float>(all.begin() + long(first * cols), all.begin() + long((first + count) * cols));
        }
        std::vector<float> out(count * cols);
        call([&](shrink_error* e) {
            return host_->tensor_read_rows_f32(host_->ctx, tensor.c_str(), first, count, out.data(), e);
        });
        return out;
    }

    std::vector<uint8_t> read_mask(const std::string& tensor) const {
        std::vector<uint8_t> out(element_count(info(tensor)));
        call([&](shrink_error* e) { return host_->tensor_read_mask(host_->ctx, tensor.c_str(), out.data(), out.size(), e); });
        return out;
    }

    void write(const std::string& tensor, const std::vector<float>& values, const std::vector<uint8_t>* mask = nullptr) {
        call([&](shrink_error* e) {
            return host_->tensor_write_f32(host_->ctx, tensor.c_str(), values.data(), values.size(),
                                           mask ? mask->data() : nullptr, e);
        });
    }

    /// Writes floats in place of a float tensor, keeping its pruning mask if it has one (a
    /// stage that rescales weights, as SmoothQuant and AWQ do, must not unprune them).
    void write_keeping_mask(const std::string& tensor, const std::vector<float>& values) {
        if (info(tensor).encoding & SHRINK_ENCODING_SPARSE) {
            const std::vector<uint8_t> mask = read_mask(tensor);
            write(tensor, values, &mask);
        } else {
            write(tensor, values);
        }
    }

    void write(const std::string& tensor, const quantized& q) {
        shrink_quant_tensor raw{q.bits, q.symmetric ? 1 : 0, q.group_size, q.values.data(), q.values.size(),
                                q.scales.data(), q.zero_points.empty() ? nullptr : q.zero_points.data(), q.scales.size()};
        call([&](shrink_error* e) { return host_->tensor_write_quant(host_->ctx, tensor.c_str(), &raw, e); });
    }

    /// Writes a table encoding (shrink_table_tensor): NF4 or k-means codes.
    void write(const std::string& tensor, const table_quantized& t) {
        require_service(offsetof(shrink_host, tensor_write_table), "table encoding");
        shrink_table_tensor raw{};
        raw.struct_size = sizeof raw;
        raw.bits = t.bits;
        raw.kind = t.kind.c_str();
        raw.group_size = t.group_size;
        raw.books = t.books;
        raw.double_quant = t.double_quant ? 1 : 0;
        raw.codes = t.codes.data();
        raw.code_count = t.codes.size();
        raw.scales = t.scales.empty() ? nullptr : t.scales.data();
        raw.scale_count = t.scales.size();
        raw.table = t.table.empty() ? nullptr : t.table.data();
        raw.table_count = t.table.size();
        call([&](shrink_error* e) { return host_->tensor_write_table(host_->ctx, tensor.c_str(), &raw, e); });
    }

    void factorize(const std::string& layer_name, uint64_t rank, const std::vector<float>& first,
                   const std::vector<float>& second) {
        call([&](shrink_error* e) {
            return host_->layer_factorize(host_->ctx, layer_name.c_str(), rank, first.data(), second.data(), e);
        });
    }

    void set_input_quant(const std::string& layer_name, float scale, int32_t zero_point) {
        call([&](shrink_error* e) { return host_->layer_set_input_quant(host_->ctx, layer_name.c_str(), scale, zero_point, e); });
    }

    /// Dynamic per-token 8-bit input quantization (shrink_host::layer_set_input_quant_per_token).
    void set_input_quant_per_token(const std::string& layer_name) {
        require_service(offsetof(shrink_host, layer_set_input_quant_per_token), "per-token activation quantization");
        call([&](shrink_error* e) { return host_->layer_set_input_quant_per_token(host_->ctx, layer_name.c_str(), e); });
    }

    /// The first release's statistics: f32 vectors, read and written as f32 artifacts.
    void put_stat(const std::string& layer_name, const std::string& key, const std::vector<float>& values) {
        call([&](shrink_error* e) {
            return host_->stat_put(host_->ctx, layer_name.c_str(), key.c_str(), values.data(), values.size(), e);
        });
    }

    /// Empty when the statistic is absent.
    std::vector<float> get_stat(const std::string& layer_name, const std::string& key) const {
        uint64_t count = 0;
        call([&](shrink_error* e) { return host_->stat_get(host_->ctx, layer_name.c_str(), key.c_str(), nullptr, 0, &count, e); });
        std::vector<float> out(count);
        call([&](shrink_error* e) {
            return host_->stat_get(host_->ctx, layer_name.c_str(), key.c_str(), out.data(), out.size(), &count, e);
        });
        return out;
    }

    /// An artifact's type (SHRINK_DTYPE_*), shape and size in bytes.
    struct artifact_info {
        int32_t dtype = 0;
        std::vector<uint64_t> shape;
        uint64_t bytes = 0;
    };

    /// The artifact type of an element type: double, float, int64_t, int32_t or uint8_t.
    template <class T>
    static constexpr int32_t artifact_dtype() {
        if constexpr (std::is_same_v<T, double>) return SHRINK_DTYPE_F64;
        else if constexpr (std::is_same_v<T, float>) return SHRINK_DTYPE_F32;
        else if constexpr (std::is_same_v<T, int64_t>) return SHRINK_DTYPE_I64;
        else if constexpr (std::is_same_v<T, int32_t>) return SHRINK_DTYPE_I32;
        else {
            static_assert(std::is_same_v<T, uint8_t>, "artifacts hold double, float, int64_t, int32_t or uint8_t");
            return SHRINK_DTYPE_U8;
        }
    }

    /// Stores what the stage measured about a layer (row-major `values` of `shape`; empty
    /// shape: one dimension of values.size()). It backs the per-layer facts the stage
    /// provides and travels with the model state until a later stage makes them stale.
    template <class T>
    void put_artifact(const std::string& layer_name, const std::string& key, const std::vector<T>& values,
                      std::vector<uint64_t> shape = {}) {
        require_service(offsetof(shrink_host, artifact_put), "artifact");
        if (shape.empty()) shape = {values.size()};
        if (shape.size() > SHRINK_ARTIFACT_MAX_RANK) throw plugin_error("an artifact has at most 4 dimensions");
        uint64_t n = 1;
        for (uint64_t d : shape) n *= d;
        if (n != values.size()) throw plugin_error("artifact '" + key + "': shape and value count disagree");
        shrink_artifact_info info{};
        info.struct_size = sizeof info;
        info.dtype = artifact_dtype<T>();
        info.rank = uint32_t(shape.size());
        std::copy(shape.begin(), shape.end(), info.shape);
        call([&](shrink_error* e) { return host_->artifact_put(host_->ctx, layer_name.c_str(), key.c_str(), &info, values.data(), e); });
    }

    /// The artifact's type and shape, or nothing when the layer has none under `key`.
    std::optional<artifact_info> find_artifact(const std::string& layer_name, const std::string& key) const {
        if (!offers(offsetof(shrink_host, artifact_find)) || !host_->artifact_find) return std::nullopt;
        shrink_artifact_info raw{};
        raw.struct_size = sizeof raw;
        int32_t found = 0;
        call([&](shrink_error* e) { return host_->artifact_find(host_->ctx, layer_name.c_str(), key.c_str(), &raw, &found, e); });
        if (!found) return std::nullopt;
        return artifact_info{raw.dtype, std::vector<uint64_t>(raw.shape, raw.shape + raw.rank), raw.bytes};
    }

    /// Elements [first, first + count) of an artifact (count 0: to the end), which must hold
    /// T. A stage reads a large one (a Hessian) a block of rows at a time. Empty when absent.
    template <class T>
    std::vector<T> read_artifact(const std::string& layer_name, const std::string& key, uint64_t first = 0,
                                 uint64_t count = 0) const {
        const auto info = find_artifact(layer_name, key);
        if (!info) return {};
        if (info->dtype != artifact_dtype<T>())
            throw plugin_error("artifact '" + key + "' of layer '" + layer_name + "' holds another element type");
        const uint64_t total = info->bytes / sizeof(T);
        if (first > total || (count && count > total - first))
            throw plugin_error("elements outside artifact '" + key + "' of layer '" + layer_name + "'");
        if (!count) count = total - first;
        std::vector<T> out(count);
        call([&](shrink_error* e) {
            return host_->artifact_read(host_->ctx, layer_name.c_str(), key.c_str(), first * sizeof(T), count * sizeof(T),
                                        out.data(), e);
        });
        return out;
    }

    /// Runs a split through the model; `observer(const shrink_forward_event&)` sees each event.
    template <class Observer>
    void forward(shrink_split split, uint64_t max_samples, bool capture_layer_inputs, Observer&& observer) {
        auto trampoline = [](void* user, const shrink_forward_event* event, shrink_error* error) -> shrink_status {
            return detail::guard(error, [&] { (*static_cast<Observer*>(user))(*event); });
        };
        call([&](shrink_error* e) {
            return host_->forward(host_->ctx, split, max_samples, capture_layer_inputs ? 1 : 0, trampoline,
                                  static_cast<void*>(&observer), e);
        });
    }

    /// Runs a split through the model one block at a time (shrink_host::forward_blocks):
    /// `observer(const shrink_forward_event&)` sees the block's layer inputs, then
    /// SHRINK_FORWARD_BLOCK_END, during which it may write the model's weights; later
    /// blocks then see the block's outputs through them.
    template <class Observer>
    void forward_blocks(shrink_split split, uint64_t max_samples, Observer&& observer) {
        require_service(offsetof(shrink_host, forward_blocks), "block-by-block forward");
        auto trampoline = [](void* user, const shrink_forward_event* event, shrink_error* error) -> shrink_status {
            return detail::guard(error, [&] { (*static_cast<Observer*>(user))(*event); });
        };
        call([&](shrink_error* e) {
            return host_->forward_blocks(host_->ctx, split, max_samples, trampoline, static_cast<void*>(&observer), e);
        });
    }

    /// One tensor's values for forward_trial.
    struct trial_tensor {
        std::string name;
        const std::vector<float>* values;
    };

    /// Runs a split like forward (OUTPUT events only) with these tensors' values replaced for
    /// this pass only (shrink_host::forward_trial): the model is unchanged afterwards.
    template <class Observer>
    void forward_trial(shrink_split split, uint64_t max_samples, const std::vector<trial_tensor>& tensors, Observer&& observer) {
        require_service(offsetof(shrink_host, forward_trial), "trial forward");
        std::vector<shrink_trial_tensor> raw;
        for (const trial_tensor& t : tensors) raw.push_back({t.name.c_str(), t.values->data(), t.values->size()});
        auto trampoline = [](void* user, const shrink_forward_event* event, shrink_error* error) -> shrink_status {
            return detail::guard(error, [&] { (*static_cast<Observer*>(user))(*event); });
        };
        call([&](shrink_error* e) {
            return host_->forward_trial(host_->ctx, split, max_samples, raw.data(), uint32_t(raw.size()), trampoline,
                                        static_cast<void*>(&observer), e);
        });
    }

    uint64_t size_bytes() const { return host_->model_size_bytes(host_->ctx); }

    /// Text data: the bytes of text each token id stands for (see shrink_host::token_bytes).
    std::vector<uint32_t> token_bytes(shrink_split split) const {
        require_service(offsetof(shrink_host, token_bytes), "token");
        uint64_t vocab = 0;
        call([&](shrink_error* e) { return host_->token_bytes(host_->ctx, split, nullptr, 0, &vocab, e); });
        std::vector<uint32_t> out(vocab);
        call([&](shrink_error* e) { return host_->token_bytes(host_->ctx, split, out.data(), out.size(), &vocab, e); });
        return out;
    }

    /// Trains on the recipe's training split (a host service; masks held, quantized weights fixed).
    train_report train(const training& t) {
        require_service(offsetof(shrink_host, train), "training");
        shrink_train_spec spec{};
        spec.struct_size = sizeof spec;
        spec.epochs = t.epochs;
        spec.batch = t.batch;
        spec.max_samples = t.max_samples;
        spec.optimizer = t.optimizer == "sgd" ? SHRINK_OPTIMIZER_SGD : SHRINK_OPTIMIZER_ADAMW;
        spec.learning_rate = t.learning_rate;
        spec.momentum = t.momentum;
        spec.weight_decay = t.weight_decay;
        spec.schedule = t.schedule == "constant" ? SHRINK_SCHEDULE_CONSTANT
                        : t.schedule == "step"   ? SHRINK_SCHEDULE_STEP
                                                 : SHRINK_SCHEDULE_COSINE;
        spec.step_epochs = t.step_epochs;
        spec.step_gamma = t.step_gamma;
        spec.distill_alpha = t.distill_alpha;
        spec.temperature = t.temperature;
        spec.hidden_pairs = t.hidden_pairs.c_str();
        spec.hidden_weight = t.hidden_weight;
        spec.batch_statistics = t.batch_statistics ? 1 : 0;
        std::string tensors;
        for (const std::string& name : t.transform_tensors) tensors.append(tensors.empty() ? "" : ",").append(name);
        spec.transform_tensors = tensors.c_str();
        using transform_fn = decltype(t.transform);
        if (t.transform) {
            spec.transform = [](void* user, const char* tensor, const float* value, float* out, uint64_t rows, uint64_t cols,
                                shrink_error* error) -> shrink_status {
                return detail::guard(error, [&] { (*static_cast<const transform_fn*>(user))(tensor, value, out, rows, cols); });
            };
            spec.transform_user = const_cast<transform_fn*>(&t.transform);
        }
        shrink_train_report raw{};
        raw.struct_size = sizeof raw;
        call([&](shrink_error* e) { return host_->train(host_->ctx, &spec, &raw, e); });
        return {raw.steps, raw.first_epoch_loss, raw.last_epoch_loss};
    }

    /// Keeps the current model as the teacher and makes a narrower student of it the current model.
    void make_student(double width_scale) {
        require_service(offsetof(shrink_host, make_student), "distillation");
        call([&](shrink_error* e) { return host_->make_student(host_->ctx, width_scale, e); });
    }

  private:
    void require_service(size_t offset, const char* what) const {
        if (host_->struct_size <= offset) throw plugin_error(std::string("this shrink host offers no ") + what + " service");
    }

    /// Whether the host's table reaches the member at `offset` (appended after the first
    /// release): a plugin built against a newer SDK may run in an older host. Check this
    /// before reading the member: beyond struct_size lies memory that is not the table's.
    bool offers(size_t offset) const { return host_->struct_size > offset; }

    template <class F>
    void call(F&& f) const {
        shrink_error error{};
        detail::check(f(&error), error);
    }
    const shrink_host* host_;
};

/// What a running stage sees: its params, the model, its seed, logging and results.
class stage_context {
  public:
    stage_context(const shrink_params* raw_params, const shrink_host* host)
        : params_(raw_params), model_(host), host_(host) {}

    const shrink::params& params() const { return params_; }
    shrink::model& model() { return model_; }
    uint64_t seed() const { return host_->seed; }
    /// Whether the plan put this stage on a GPU (only where the stage type declares
    /// SHRINK_DEVICE_CUDA); then cuda() is its device.
    bool on_cuda() const { return host_->device == SHRINK_DEVICE_CUDA; }
    cuda_device cuda() const {
        const bool offered = host_->struct_size > offsetof(shrink_host, cuda) && host_->cuda;
        if (!on_cuda() || !offered) throw plugin_error("this stage does not run on a CUDA device");
        return cuda_device(host_->cuda);
    }
    void log(const std::string& message, int32_t level = SHRINK_LOG_INFO) const {
        host_->log(host_->ctx, level, message.c_str());
    }
    void progress(const char* what, uint64_t done, uint64_t total) const { host_->progress(host_->ctx, what, done, total); }
    void result(const std::string& key, double value) {
        shrink_error error{};
        detail::check(host_->result_put(host_->ctx, key.c_str(), value, &error), error);
    }

  private:
    shrink::params params_;
    shrink::model model_;
    const shrink_host* host_;
};

/// Declaration of one parameter; see shrink_param_decl.
struct param {
    std::string name;
    shrink_param_type type = SHRINK_PARAM_FLOAT;
    std::string default_value;  // empty: the recipe must set it
    double min_value = 0;
    double max_value = 0;
    std::string choices;
    std::string doc;

    static param integer(std::string name, int64_t def, int64_t lo, int64_t hi, std::string doc) {
        return {std::move(name), SHRINK_PARAM_INT, std::to_string(def), double(lo), double(hi), "", std::move(doc)};
    }
    static param real(std::string name, std::string def, double lo, double hi, std::string doc) {
        return {std::move(name), SHRINK_PARAM_FLOAT, std::move(def), lo, hi, "", std::move(doc)};
    }
    static param flag(std::string name, bool def, std::string doc) {
        return {std::move(name), SHRINK_PARAM_BOOL, def ? "true" : "false", 0, 1, "", std::move(doc)};
    }
    static param choice(std::string name, std::string def, std::string choices, std::string doc) {
        return {std::move(name), SHRINK_PARAM_CHOICE, std::move(def), 0, 0, std::move(choices), std::move(doc)};
    }
    /// A list of the model's layer names (checked against the model before anything runs);
    /// default: all. The first such param is the stage's scope.
    static param layers(std::string name, std::string doc) {
        return {std::move(name), SHRINK_PARAM_LAYERS, "[]", 0, 0, "", std::move(doc)};
    }
};

struct fact {
    shrink_fact_relation relation;
    std::string name;
    std::string when_param;  // empty: always

    static fact requires_(std::string f, std::string when = {}) { return {SHRINK_FACT_REQUIRES, std::move(f), std::move(when)}; }
    static fact provides(std::string f, std::string when = {}) { return {SHRINK_FACT_PROVIDES, std::move(f), std::move(when)}; }
    static fact invalidates(std::string f, std::string when = {}) { return {SHRINK_FACT_INVALIDATES, std::move(f), std::move(when)}; }
    static fact forbids(std::string f, std::string when = {}) { return {SHRINK_FACT_FORBIDS, std::move(f), std::move(when)}; }
};

struct stage_type {
    std::string name;  // "<kind>.<name>"
    std::string doc;
    std::vector<param> params;
    std::vector<fact> facts;
    uint32_t devices = SHRINK_DEVICE_CPU;
    std::function<double(const shrink::params&)> expected_drop;
    std::function<void(stage_context&)> run;
    uint32_t resources = 0;  // SHRINK_RESOURCE_* bits
    int32_t time_class = SHRINK_TIME_WEIGHTS;
    /// Optional: bytes the stage holds at its peak beyond the model state, for these params
    /// and this model (abi.h, memory_bytes); set, it replaces the estimate `resources` implies.
    std::function<uint64_t(const shrink::params&, const shrink_model_outline&)> memory = {};
    /// An evaluator's metrics (abi.h, metrics): the results a budget may judge it by.
    std::vector<std::string> metrics = {};
    /// The plan may run it ahead on cached input to show what it will do (abi.h,
    /// SHRINK_STAGE_PREVIEW): only for stages quick beside those before them.
    bool previewable = false;
};

/// A plugin: a name, a version and its stage types. Lives as long as the library.
class plugin {
  public:
    plugin(std::string name, std::string version) : name_(std::move(name)), version_(std::move(version)) {}
    plugin(plugin&&) = default;
    plugin(const plugin&) = delete;

    plugin& add(stage_type type) {
        types_.push_back({std::move(type), {}, {}, {}});
        return *this;
    }

    /// Builds the C view. Pointers refer into this object, which must not move afterwards.
    const shrink_plugin_descriptor* descriptor() {
        c_types_.clear();
        for (entry& e : types_) {
            e.c_params.clear();
            for (const param& p : e.type.params)
                e.c_params.push_back({p.name.c_str(), p.type, p.default_value.empty() ? nullptr : p.default_value.c_str(),
                                      p.min_value, p.max_value, p.choices.c_str(), p.doc.c_str()});
            e.c_facts.clear();
            for (const fact& f : e.type.facts)
                e.c_facts.push_back({f.relation, f.name.c_str(), f.when_param.empty() ? nullptr : f.when_param.c_str()});
            shrink_stage_type t{};
            t.struct_size = sizeof(shrink_stage_type);
            t.name = e.type.name.c_str();
            t.doc = e.type.doc.c_str();
            t.params = e.c_params.data();
            t.param_count = static_cast<uint32_t>(e.c_params.size());
            t.facts = e.c_facts.data();
            t.fact_count = static_cast<uint32_t>(e.c_facts.size());
            t.devices = e.type.devices;
            t.state = &e.type;
            t.expected_drop = &expected_drop_trampoline;
            t.run = &run_trampoline;
            t.resources = e.type.resources;
            t.time_class = e.type.time_class;
            t.memory_bytes = e.type.memory ? &memory_trampoline : nullptr;
            e.c_metrics.clear();
            for (const std::string& m : e.type.metrics) e.c_metrics += (e.c_metrics.empty() ? "" : ",") + m;
            t.metrics = e.type.metrics.empty() ? nullptr : e.c_metrics.c_str();
            t.flags = e.type.previewable ? SHRINK_STAGE_PREVIEW : 0u;
            c_types_.push_back(t);
        }
        c_descriptor_ = {SHRINK_ABI_VERSION, sizeof(shrink_plugin_descriptor), name_.c_str(), version_.c_str(),
                         c_types_.data(), static_cast<uint32_t>(c_types_.size())};
        return &c_descriptor_;
    }

  private:
    struct entry {
        stage_type type;
        std::vector<shrink_param_decl> c_params;
        std::vector<shrink_fact_decl> c_facts;
        std::string c_metrics;
    };

    static shrink_status expected_drop_trampoline(const void* state, const shrink_params* raw, double* drop,
                                                  shrink_error* error) {
        return detail::guard(error, [&] {
            const auto* type = static_cast<const stage_type*>(state);
            *drop = type->expected_drop ? type->expected_drop(params(raw)) : 0.0;
        });
    }

    static shrink_status memory_trampoline(const void* state, const shrink_params* raw, const shrink_model_outline* outline,
                                           uint64_t* bytes, shrink_error* error) {
        return detail::guard(error, [&] {
            const auto* type = static_cast<const stage_type*>(state);
            // A host older than this SDK may pass a smaller outline: what it lacks reads as 0.
            shrink_model_outline o{};
            std::memcpy(&o, outline, std::min<size_t>(outline->struct_size, sizeof o));
            *bytes = type->memory(params(raw), o);
        });
    }

    static shrink_status run_trampoline(const void* state, const shrink_params* raw, const shrink_host* host,
                                        shrink_error* error) {
        return detail::guard(error, [&] {
            const auto* type = static_cast<const stage_type*>(state);
            stage_context ctx(raw, host);
            type->run(ctx);
        });
    }

    std::string name_;
    std::string version_;
    std::deque<entry> types_;  // deque: stable addresses for `state`
    std::vector<shrink_stage_type> c_types_;
    shrink_plugin_descriptor c_descriptor_{};
};

namespace detail {

/// Body of the exported entry point: builds the plugin once, reports failures as status.
template <class Make>
shrink_status plugin_entry(uint32_t /*host_abi_version*/, const shrink_plugin_descriptor** out, shrink_error* error,
                           Make make) noexcept {
    return guard(error, [&] {
        static plugin instance = make();
        static const shrink_plugin_descriptor* descriptor = instance.descriptor();
        *out = descriptor;
    });
}

}  // namespace detail
}  // namespace shrink

/// Exports the plugin's single entry point. `make` returns a shrink::plugin.
#define SHRINK_PLUGIN(make)                                                                                       \
    namespace {                                                                                                  \
    shrink_status shrink_plugin_entry_impl(uint32_t host_abi_version, const shrink_plugin_descriptor** out,      \
                                           shrink_error* error) {                                                \
        return ::shrink::detail::plugin_entry(host_abi_version, out, error, make);                              \
    }                                                                                                            \
    }                                                                                                            \
    BOOST_DLL_ALIAS(shrink_plugin_entry_impl, shrink_plugin_entry)
