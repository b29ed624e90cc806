#include "run/stage_host.hpp"

#include "model/safetensors.hpp"
#include "plugins/abi_tables.hpp"
#include "runtime/runner.hpp"
#include "train/fit.hpp"
#include "train/student.hpp"
#include "util/c_guard.hpp"
#include "util/console.hpp"
#include "util/files.hpp"
#include "util/random.hpp"
#include "util/text.hpp"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <set>
#include <stdexcept>

namespace shrink {

namespace {

/// Turns a split's images into model inputs, checked once against the model.
class input_filler {
  public:
    input_filler(const split_view& view, const model& m) : view_(view), m_(m) {
        // Grayscale images feed a model with C channels: each pixel goes to every channel.
        pixels_ = view.images->features;
        channels_ = pixels_ > 0 && m.input_features % pixels_ == 0 ? m.input_features / pixels_ : 0;
        if (channels_ < 1 || (!view.preprocess && channels_ != 1))
            throw std::runtime_error("the data has " + std::to_string(pixels_) + " pixels per sample, the model takes " +
                                     std::to_string(m.input_features) + " values" +
                                     (channels_ > 1 ? " (several channels: give data.preprocess)" : ""));
        for (const auto* list : {&view.mean, &view.std})
            if (view.preprocess && list->size() != 1 && int64_t(list->size()) != channels_)
                throw std::runtime_error("data.preprocess gives " + std::to_string(list->size()) +
                                         " per-channel values; the model takes " + std::to_string(channels_) + " channel(s)");
    }

    /// Sample `idx` of the image set into `row` (the model's input_features floats).
    void fill(int64_t idx, float* row, int32_t* label) const {
        const uint8_t* px = view_.images->pixels.data() + idx * pixels_;
        if (view_.preprocess)
            for (int64_t c = 0; c < channels_; ++c) {
                const float mean = view_.mean[view_.mean.size() == 1 ? 0 : size_t(c)];
                const float std = view_.std[view_.std.size() == 1 ? 0 : size_t(c)];
                for (int64_t f = 0; f < pixels_; ++f)
                    row[view_.channels_last ? f * channels_ + c : c * pixels_ + f] = (float(px[f]) * view_.scale - mean) / std;
            }
        else
            for (int64_t f = 0; f < m_.input_features; ++f) row[f] = float(px[f]) * m_.input_scale;
        *label = view_.images->labels[size_t(idx)];
    }

  private:
    const split_view& view_;
    const model& m_;
    int64_t pixels_ = 0, channels_ = 0;
};

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
                       device_choice device)
    : state_(state), data_(std::move(data)), stage_id_(std::move(stage_id)), read_only_(read_only), device_(device) {
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
}

void stage_host::require_writable(const char* what) const {
    if (read_only_) throw std::logic_error(std::string("an evaluator may not change the model (") + what + ")");
}

void stage_host::log(void* ctx, int32_t level, const char* message) {
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
        tensor next;
        next.shape = t.shape;
        next.values.assign(src, src + count);
        for (float v : next.values)
            if (!std::isfinite(v)) throw std::invalid_argument("tensor '" + n + "': values must be finite");
        if (mask) {
            next.mask.assign(mask, mask + count);
            for (uint64_t i = 0; i < count; ++i) {
                if (next.mask[i] > 1) throw std::invalid_argument("tensor '" + n + "': mask entries must be 0 or 1");
                if (!next.mask[i] && next.values[i] != 0.0f)
                    throw std::invalid_argument("tensor '" + n + "': a pruned position (mask 0) must hold 0");
            }
        }
        t = std::move(next);
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

shrink_status stage_host::layer_factorize(void* ctx, const char* layer_name, uint64_t rank, const float* first,
                                          const float* second, shrink_error* error) {
    return guarded(error, [&] {
        stage_host& h = self(ctx);
        h.require_writable("layer_factorize");
        model& m = h.state_.net;
        const std::string n = arg(layer_name, "layer");
        layer* l = m.find_layer(n);
        if (!l || !has_matrix(l->op)) throw std::invalid_argument("'" + n + "' is not a linear or conv layer");
        if (l->win.group != 1)
            throw std::invalid_argument("'" + n + "' is a grouped conv: its weight is not one matrix, so it cannot be factorized");
        const tensor& w = m.at(l->weight);
        const int64_t out = int64_t(w.rows()), in = int64_t(w.cols());
        if (rank == 0 || int64_t(rank) > std::min(out, in))
            throw std::invalid_argument("rank " + std::to_string(rank) + " is outside [1, min(out, in)]");
        if (!first || !second) throw std::invalid_argument("factors are NULL");
        layer a = *l, b = *l;
        a.name = n + ".a";
        a.weight = n + ".a.weight";
        a.bias.clear();
        a.output = n + ".a.out";
        b.name = n + ".b";
        b.weight = n + ".b.weight";
        b.input = a.output;
        b.input_quantization.reset();
        a.factor_of = b.factor_of = l->factor_of.empty() ? n : l->factor_of;
        a.rank = b.rank = rank;
        if (m.tensors.count(a.weight) || m.tensors.count(b.weight) || m.find_layer(a.name) || m.find_layer(b.name))
            throw std::invalid_argument("layer '" + n + "' was already factorized");
        tensor ta, tb;
        ta.shape = {int64_t(rank), in};
        tb.shape = {out, int64_t(rank)};
        if (l->op == "conv") {
            // The first conv keeps the window and makes `rank` channels; the second mixes
            // them back to `out` with a 1x1 conv.
            ta.shape = {int64_t(rank), w.shape[1], w.shape[2], w.shape[3]};
            tb.shape = {out, int64_t(rank), 1, 1};
            b.win = window{};
        }
        ta.values.assign(first, first + rank * uint64_t(in));
        tb.values.assign(second, second + uint64_t(out) * rank);
        m.tensors.erase(l->weight);
        m.tensors[a.weight] = std::move(ta);
        m.tensors[b.weight] = std::move(tb);
        const auto at = m.layers.begin() + (l - m.layers.data());
        *at = b;
        m.layers.insert(at, a);
        m.validate();
    });
}

shrink_status stage_host::layer_set_input_quant(void* ctx, const char* layer_name, float scale, int32_t zero_point,
                                                shrink_error* error) {
    return guarded(error, [&] {
        stage_host& h = self(ctx);
        h.require_writable("layer_set_input_quant");
        layer* l = h.state_.net.find_layer(arg(layer_name, "layer"));
        if (!l || !has_matrix(l->op)) throw std::invalid_argument(std::string("'") + layer_name + "' is not a linear or conv layer");
        if (!(scale > 0) || !std::isfinite(scale) || zero_point < 0 || zero_point > 255)
            throw std::invalid_argument("activation scale must be positive and the zero point in [0, 255]");
        l->input_quantization = input_quant{scale, zero_point};
    });
}

shrink_status stage_host::stat_put(void* ctx, const char* layer_name, const char* key, const float* values,
                                   uint64_t count, shrink_error* error) {
    return guarded(error, [&] {
        stage_host& h = self(ctx);
        const std::string l = arg(layer_name, "layer");
        if (!h.state_.net.find_layer(l)) throw std::invalid_argument("no layer '" + l + "'");
        h.state_.stats[l + "/" + arg(key, "key")] = std::vector<float>(values, values + count);
    });
}

shrink_status stage_host::stat_get(void* ctx, const char* layer_name, const char* key, float* dst, uint64_t capacity,
                                   uint64_t* count, shrink_error* error) {
    return guarded(error, [&] {
        const auto& stats = self(ctx).state_.stats;
        auto it = stats.find(arg(layer_name, "layer") + "/" + arg(key, "key"));
        const uint64_t n = it == stats.end() ? 0 : it->second.size();
        if (dst && it != stats.end()) std::copy_n(it->second.begin(), std::min(n, capacity), dst);
        if (count) *count = n;
    });
}

shrink_status stage_host::forward(void* ctx, int32_t split, uint64_t max_samples, int32_t capture_layer_inputs,
                                  shrink_forward_observer observer, void* user, shrink_error* error) {
    return guarded(error, [&] {
        stage_host& h = self(ctx);
        if (split != SHRINK_SPLIT_CALIBRATION && split != SHRINK_SPLIT_EVALUATION)
            throw std::invalid_argument("unknown split " + std::to_string(split));
        if (!observer) throw std::invalid_argument("observer is NULL");
        const split_view& view = h.data_(static_cast<shrink_split>(split));
        const model& m = h.state_.net;
        const input_filler filler(view, m);
        const std::unique_ptr<runner> run = make_runner(m, h.device_);
        const uint64_t total = max_samples ? std::min<uint64_t>(max_samples, view.indices.size()) : view.indices.size();
        const int64_t batch = 256;
        std::vector<float> input;
        std::vector<int32_t> labels;
        shrink_error inner{};
        auto emit = [&](const shrink_forward_event& ev) {
            if (observer(user, &ev, &inner) != SHRINK_OK) throw std::runtime_error(inner.message);
        };
        const char* what = split == SHRINK_SPLIT_CALIBRATION ? "calibration" : "evaluation";
        for (uint64_t start = 0; start < total; start += batch) {
            const int64_t rows = int64_t(std::min<uint64_t>(batch, total - start));
            input.resize(size_t(rows * m.input_features));
            labels.resize(size_t(rows));
            for (int64_t r = 0; r < rows; ++r)
                filler.fill(view.indices[start + uint64_t(r)], input.data() + r * m.input_features, &labels[size_t(r)]);
            runner::layer_input_fn on_input;
            if (capture_layer_inputs)
                on_input = [&](const std::string& layer, const float* data, int64_t n, int64_t cols) {
                    shrink_forward_event ev{};
                    ev.kind = SHRINK_FORWARD_LAYER_INPUT;
                    ev.layer = layer.c_str();
                    ev.data = data;
                    ev.rows = uint64_t(n);
                    ev.cols = uint64_t(cols);
                    emit(ev);
                };
            const auto t0 = std::chrono::steady_clock::now();
            const std::vector<float> out = run->run(input.data(), rows, on_input);
            const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
            shrink_forward_event ev{};
            ev.kind = SHRINK_FORWARD_OUTPUT;
            ev.data = out.data();
            ev.rows = uint64_t(rows);
            ev.cols = uint64_t(run->output_width());
            ev.labels = labels.data();
            ev.seconds = seconds;
            emit(ev);
            progress(ctx, what, start + uint64_t(rows), total);
        }
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
        // A plugin built against an older abi.h passes a smaller spec: what it does not know reads as zero.
        const shrink_train_spec spec_copy = abi::read_table(spec_arg, SHRINK_TRAIN_SPEC_SIZE_1, "the training spec");
        const shrink_train_spec* spec = &spec_copy;
        model& m = h.state_.net;
        train::fit_options f;
        f.epochs = spec->epochs;
        f.batch = int64_t(spec->batch);
        f.max_samples = int64_t(spec->max_samples);
        f.seed = h.table_.seed;
        if (spec->optimizer != SHRINK_OPTIMIZER_SGD && spec->optimizer != SHRINK_OPTIMIZER_ADAMW)
            throw std::invalid_argument("unknown optimizer " + std::to_string(spec->optimizer));
        f.optimizer.kind = spec->optimizer == SHRINK_OPTIMIZER_SGD ? "sgd" : "adamw";
        f.optimizer.learning_rate = spec->learning_rate;
        f.optimizer.momentum = spec->momentum;
        f.optimizer.weight_decay = spec->weight_decay;
        const int32_t sched = spec->schedule;
        if (sched != SHRINK_SCHEDULE_CONSTANT && sched != SHRINK_SCHEDULE_COSINE && sched != SHRINK_SCHEDULE_STEP)
            throw std::invalid_argument("unknown schedule " + std::to_string(sched));
        f.optimizer.schedule = sched == SHRINK_SCHEDULE_CONSTANT ? "constant" : sched == SHRINK_SCHEDULE_COSINE ? "cosine" : "step";
        f.optimizer.step_epochs = spec->step_epochs;
        f.optimizer.step_gamma = spec->step_gamma;
        f.alpha = spec->distill_alpha;
        f.temperature = spec->temperature;
        f.hidden_weight = spec->hidden_weight;
        // A layer's name stands for its output.
        auto value_of = [](const model* net, const std::string& name) {
            const layer* l = net ? net->find_layer(name) : nullptr;
            return l ? l->output : name;
        };
        if (spec->hidden_pairs)
            for (const std::string& pair : split(spec->hidden_pairs, ',')) {
                if (pair.empty()) continue;
                const size_t colon = pair.find(':');
                if (colon == std::string::npos) throw std::invalid_argument("hidden pair '" + pair + "' is not student:teacher");
                f.hidden_pairs.emplace_back(value_of(&m, pair.substr(0, colon)), value_of(h.state_.teacher.get(), pair.substr(colon + 1)));
            }
        if (f.alpha > 0 || !f.hidden_pairs.empty()) {
            if (!h.state_.teacher) throw std::invalid_argument("distillation needs a teacher, and this model state keeps none");
            f.teacher = h.state_.teacher.get();
        }
        f.net.batch_statistics = spec->batch_statistics != 0;
        std::set<std::string> transformed;
        if (spec->transform_tensors)
            for (const std::string& name : split(spec->transform_tensors, ','))
                if (!name.empty()) {
                    const tensor& t = m.at(name);  // throws naming an unknown tensor
                    if (t.quant) throw std::invalid_argument("tensor '" + name + "' is already quantized");
                    transformed.insert(name);
                }
        if (!transformed.empty() && !spec->transform) throw std::invalid_argument("transform_tensors given without a transform");
        if (!transformed.empty())
            f.before_forward = [&](std::vector<train::parameter<float>>& params) {
                for (train::parameter<float>& p : params) {
                    if (!transformed.count(p.tensor)) continue;
                    p.effective.resize(p.value.size());
                    shrink_error inner{};
                    if (spec->transform(spec->transform_user, p.tensor.c_str(), p.value.data(), p.effective.data(),
                                        tensor::matrix_rows(p.shape), tensor::matrix_cols(p.shape), &inner) != SHRINK_OK)
                        throw std::runtime_error(std::string("the weight transform failed on '") + p.tensor + "': " + inner.message);
                    for (float v : p.effective)
                        if (!std::isfinite(v)) throw std::runtime_error("the weight transform made a non-finite value in '" + p.tensor + "'");
                }
            };
        const split_view& view = h.data_(SHRINK_SPLIT_TRAINING);
        const input_filler filler(view, m);
        train::sample_source data;
        data.count = int64_t(view.indices.size());
        data.fill = [&](const int64_t* idx, int64_t rows, float* x, int32_t* labels) {
            for (int64_t r = 0; r < rows; ++r) filler.fill(view.indices[size_t(idx[r])], x + r * m.input_features, labels + r);
        };
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
        model student = shrink::make_student(h.state_.net, width_scale, derive_seed(h.table_.seed, "student"));
        h.state_.teacher = std::make_shared<const model>(std::move(h.state_.net));
        h.state_.teacher_from_stage = true;
        h.state_.net = std::move(student);
        h.state_.stats.clear();
    });
}

}  // namespace shrink
