// Convolution, pooling, normalization and padding for the reference interpreter, over
// any number of spatial dimensions ([N, C, D1, ..., Dk] layout), with ONNX's padding
// rules (explicit pads, auto_pad SAME_UPPER / SAME_LOWER / VALID, ceil_mode).
#include "onnx/interpreter.hpp"
#include "onnx/interpreter_detail.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <functional>
#include <stdexcept>

namespace shrink::onnx_import::detail {

namespace {

struct window {
    std::vector<int64_t> kernel, strides, dilations, pad_begin, pad_end, out;
};

std::vector<int64_t> ints_attr(const node& n, const char* name, std::vector<int64_t> fallback) {
    const attribute* a = n.attr(name);
    return a && !a->ints.empty() ? a->ints : fallback;
}

/// Output sizes and padding of a sliding window over the spatial dims of `x`.
window plan_window(const node& n, const std::vector<int64_t>& spatial, std::vector<int64_t> kernel, bool ceil_mode) {
    const size_t k = spatial.size();
    window w;
    w.kernel = std::move(kernel);
    w.strides = ints_attr(n, "strides", std::vector<int64_t>(k, 1));
    w.dilations = ints_attr(n, "dilations", std::vector<int64_t>(k, 1));
    const std::vector<int64_t> pads = ints_attr(n, "pads", std::vector<int64_t>(2 * k, 0));
    // Attributes come from the file: their sizes and ranges are checked before any
    // arithmetic uses them (a stride of 0 divides by zero).
    constexpr int64_t limit = int64_t(1) << 20;
    auto check = [&](const char* name, const std::vector<int64_t>& v, size_t size, int64_t low) {
        if (v.size() != size)
            throw std::runtime_error(std::string(name) + " has " + std::to_string(v.size()) + " values, the input has " +
                                     std::to_string(k) + " spatial dimensions");
        for (int64_t x : v)
            if (x < low || x > limit)
                throw std::runtime_error(std::string(name) + " value " + std::to_string(x) + " is outside [" + std::to_string(low) +
                                         ", 2^20]");
    };
    check("kernel_shape", w.kernel, k, 1);
    check("strides", w.strides, k, 1);
    check("dilations", w.dilations, k, 1);
    check("pads", pads, 2 * k, 0);
    for (int64_t d : spatial)
        if (d < 1 || d > limit) throw std::runtime_error("a spatial size of the input is outside [1, 2^20]");
    const attribute* ap = n.attr("auto_pad");
    const std::string auto_pad = ap && ap->s ? *ap->s : "NOTSET";
    if (auto_pad != "NOTSET" && auto_pad != "SAME_UPPER" && auto_pad != "SAME_LOWER" && auto_pad != "VALID")
        throw std::runtime_error("auto_pad '" + auto_pad + "' is not NOTSET, SAME_UPPER, SAME_LOWER or VALID");
    for (size_t d = 0; d < k; ++d) {
        const int64_t extent = (w.kernel[d] - 1) * w.dilations[d] + 1;
        int64_t pb = pads[d], pe = pads[d + k], out;
        if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
            out = (spatial[d] + w.strides[d] - 1) / w.strides[d];
            const int64_t total = std::max<int64_t>((out - 1) * w.strides[d] + extent - spatial[d], 0);
            pb = auto_pad == "SAME_UPPER" ? total / 2 : total - total / 2;
            pe = total - pb;
        } else if (auto_pad == "VALID") {
            pb = pe = 0;
            out = (spatial[d] - extent) / w.strides[d] + 1;
        } else {
            const double span = double(spatial[d] + pb + pe - extent) / double(w.strides[d]);
            out = int64_t(ceil_mode ? std::ceil(span) : std::floor(span)) + 1;
            // A window that would start entirely in the end padding is dropped (ceil_mode).
            if (ceil_mode && (out - 1) * w.strides[d] >= spatial[d] + pb) --out;
        }
        w.pad_begin.push_back(pb);
        w.pad_end.push_back(pe);
        w.out.push_back(out);
    }
    return w;
}

/// Calls f(output spatial offset, input spatial positions of the window) for each output
/// position; positions outside the input are reported as -1, padding as -2.
template <class F>
void for_each_window(const std::vector<int64_t>& spatial, const window& w, F&& f) {
    const size_t k = spatial.size();
    std::vector<int64_t> o(k, 0), kk(k, 0);
    int64_t total = 1;
    for (int64_t v : w.out) total *= v;
    const auto in_strides = strides_of(spatial);
    std::vector<int64_t> positions;
    for (int64_t flat = 0; flat < total; ++flat) {
        positions.clear();
        std::fill(kk.begin(), kk.end(), 0);
        int64_t kernel_total = 1;
        for (int64_t v : w.kernel) kernel_total *= v;
        for (int64_t kf = 0; kf < kernel_total; ++kf) {
            int64_t offset = 0;
            bool inside = true, in_pads = true;
            for (size_t d = 0; d < k; ++d) {
                const int64_t pos = o[d] * w.strides[d] - w.pad_begin[d] + kk[d] * w.dilations[d];
                if (pos < 0 || pos >= spatial[d]) inside = false;
                if (pos < -w.pad_begin[d] || pos >= spatial[d] + w.pad_end[d]) in_pads = false;
                offset += pos * in_strides[d];
            }
            positions.push_back(inside ? offset : in_pads ? -2 : -1);
            for (size_t d = k; d-- > 0;) {
                if (++kk[d] < w.kernel[d]) break;
                kk[d] = 0;
            }
        }
        f(flat, positions);
        for (size_t d = k; d-- > 0;) {
            if (++o[d] < w.out[d]) break;
            o[d] = 0;
        }
    }
}

std::vector<int64_t> spatial_of(const nd_tensor& x) { return {x.shape.begin() + 2, x.shape.end()}; }

nd_tensor make_output(element type, int64_t n, int64_t c, const std::vector<int64_t>& spatial) {
    nd_tensor out;
    out.type = type;
    out.shape = {n, c};
    out.shape.insert(out.shape.end(), spatial.begin(), spatial.end());
    for (int64_t d : spatial)
        if (d <= 0) throw std::runtime_error("the window does not fit the input");
    check_shape(out.shape);
    out.data.assign(size_t(out.size()), 0.0);
    return out;
}

int64_t product(const std::vector<int64_t>& v) {
    int64_t p = 1;
    for (int64_t x : v) p *= x;
    return p;
}

std::vector<nd_tensor> conv(const node& n, const inputs_t& in, int64_t) {
    const nd_tensor& x = *in[0];
    const nd_tensor& wt = *in[1];
    const nd_tensor* bias = in.size() > 2 ? in[2] : nullptr;
    if (x.shape.size() < 3) throw std::runtime_error("the input must be [N, C, spatial...]");
    if (wt.shape.size() != x.shape.size()) throw std::runtime_error("the weight's rank differs from the input's");
    const int64_t batch = x.shape[0], channels = x.shape[1], maps = wt.shape[0];
    const int64_t group = n.int_attr("group", 1);
    if (group < 1 || channels % group || maps % group)
        throw std::runtime_error("group " + std::to_string(group) + " does not divide the " + std::to_string(channels) +
                                 " input channels and " + std::to_string(maps) + " output channels");
    const int64_t per_group_in = channels / group, per_group_out = maps / group;
    if (wt.shape[1] != per_group_in) throw std::runtime_error("weight channels do not match the input's channels per group");
    const std::vector<int64_t> weight_window(wt.shape.begin() + 2, wt.shape.end());
    const std::vector<int64_t> kernel = ints_attr(n, "kernel_shape", weight_window);
    if (kernel != weight_window) throw std::runtime_error("kernel_shape differs from the weight's spatial shape");
    if (bias && (bias->shape.size() != 1 || bias->shape[0] != maps))
        throw std::runtime_error("the bias must hold one value per output channel (" + std::to_string(maps) + ")");
    const std::vector<int64_t> spatial = spatial_of(x);
    const window w = plan_window(n, spatial, kernel, false);
    nd_tensor out = make_output(x.type, batch, maps, w.out);
    const int64_t in_size = product(spatial), out_size = product(w.out), k_size = product(w.kernel);
    for (int64_t b = 0; b < batch; ++b)
        for (int64_t m = 0; m < maps; ++m) {
            const int64_t g = m / per_group_out;
            double* dst = out.data.data() + (b * maps + m) * out_size;
            for_each_window(spatial, w, [&](int64_t o, const std::vector<int64_t>& pos) {
                double sum = bias ? bias->data[size_t(m)] : 0.0;
                for (int64_t c = 0; c < per_group_in; ++c) {
                    const double* src = x.data.data() + (b * channels + g * per_group_in + c) * in_size;
                    const double* kern = wt.data.data() + (m * per_group_in + c) * k_size;
                    for (int64_t kf = 0; kf < k_size; ++kf)
                        if (pos[size_t(kf)] >= 0) sum += src[pos[size_t(kf)]] * kern[kf];
                }
                dst[o] = sum;
            });
        }
    out.round_to_type();
    return {out};
}

std::vector<nd_tensor> pool(const node& n, const inputs_t& in, bool is_max) {
    const nd_tensor& x = *in[0];
    if (x.shape.size() < 3) throw std::runtime_error("the input must be [N, C, spatial...]");
    const std::vector<int64_t> spatial = spatial_of(x);
    const window w = plan_window(n, spatial, ints_attr(n, "kernel_shape", {}), n.int_attr("ceil_mode", 0) != 0);
    if (w.kernel.size() != spatial.size()) throw std::runtime_error("kernel_shape must name every spatial dimension");
    const int64_t batch = x.shape[0], channels = x.shape[1];
    nd_tensor out = make_output(x.type, batch, channels, w.out);
    nd_tensor indices = make_output(element::i64, batch, channels, w.out);
    const bool include_pad = n.int_attr("count_include_pad", 0) != 0;
    const bool column_major = n.int_attr("storage_order", 0) != 0;
    const int64_t in_size = product(spatial), out_size = product(w.out);
    for (int64_t bc = 0; bc < batch * channels; ++bc) {
        const double* src = x.data.data() + bc * in_size;
        for_each_window(spatial, w, [&](int64_t o, const std::vector<int64_t>& pos) {
            double acc = is_max ? -std::numeric_limits<double>::infinity() : 0.0;
            int64_t count = 0, best = -1;
            for (int64_t p : pos) {
                if (p >= 0) {
                    if (is_max && src[p] > acc) acc = src[p], best = p;
                    if (!is_max) acc += src[p];
                    ++count;
                } else if (p == -2 && include_pad) {
                    ++count;
                }
            }
            out.data[size_t(bc * out_size + o)] = is_max ? acc : acc / double(std::max<int64_t>(count, 1));
            if (is_max && best >= 0) {
                int64_t flat = best;
                if (column_major && spatial.size() == 2) flat = (best % spatial[1]) * spatial[0] + best / spatial[1];
                indices.data[size_t(bc * out_size + o)] = double(bc * in_size + flat);
            }
        });
    }
    out.round_to_type();
    return {out, indices};
}

std::vector<nd_tensor> global_pool(const nd_tensor& x, bool is_max) {
    if (x.shape.size() < 3) throw std::runtime_error("the input must be [N, C, spatial...]");
    const std::vector<int64_t> spatial = spatial_of(x);
    const int64_t in_size = product(spatial), planes = x.shape[0] * x.shape[1];
    nd_tensor out = make_output(x.type, x.shape[0], x.shape[1], std::vector<int64_t>(spatial.size(), 1));
    for (int64_t p = 0; p < planes; ++p) {
        const auto begin = x.data.begin() + p * in_size, end = begin + in_size;
        out.data[size_t(p)] = is_max ? *std::max_element(begin, end) : std::accumulate(begin, end, 0.0) / double(in_size);
    }
    out.round_to_type();
    return {out};
}

std::vector<nd_tensor> batch_norm(const node& n, const inputs_t& in, int64_t) {
    const nd_tensor& x = *in[0];
    const double eps = n.float_attr("epsilon", 1e-5), momentum = n.float_attr("momentum", 0.9);
    const bool training = n.int_attr("training_mode", 0) != 0;
    const int64_t channels = x.shape.size() > 1 ? x.shape[1] : 1;
    const int64_t inner = x.shape.size() > 2 ? product({x.shape.begin() + 2, x.shape.end()}) : 1;
    if (x.shape.empty()) throw std::runtime_error("the input has no batch dimension");
    const int64_t batch = x.shape[0];
    for (size_t k = 1; k < 5; ++k)
        if (in[k]->size() != channels)
            throw std::runtime_error("input " + std::to_string(k) + " holds " + std::to_string(in[k]->size()) + " values, one per channel (" +
                                     std::to_string(channels) + ") is needed");
    std::vector<double> mean = in[3]->data, var = in[4]->data;
    nd_tensor running_mean = *in[3], running_var = *in[4];
    if (training) {
        // Batch statistics (biased variance), and the running ones updated with momentum.
        for (int64_t c = 0; c < channels; ++c) {
            double s = 0, s2 = 0;
            for (int64_t b = 0; b < batch; ++b)
                for (int64_t i = 0; i < inner; ++i) s += x.data[size_t((b * channels + c) * inner + i)];
            const double m = s / double(batch * inner);
            for (int64_t b = 0; b < batch; ++b)
                for (int64_t i = 0; i < inner; ++i) {
                    const double d = x.data[size_t((b * channels + c) * inner + i)] - m;
                    s2 += d * d;
                }
            const double v = s2 / double(batch * inner);
            running_mean.data[size_t(c)] = mean[size_t(c)] * momentum + m * (1 - momentum);
            running_var.data[size_t(c)] = var[size_t(c)] * momentum + v * (1 - momentum);
            mean[size_t(c)] = m;
            var[size_t(c)] = v;
        }
        running_mean.round_to_type();
        running_var.round_to_type();
    }
    nd_tensor y = x;
    for (int64_t b = 0; b < batch; ++b)
        for (int64_t c = 0; c < channels; ++c) {
            const double scale = in[1]->data[size_t(c)] / std::sqrt(var[size_t(c)] + eps), shift = in[2]->data[size_t(c)];
            for (int64_t i = 0; i < inner; ++i) {
                double& v = y.data[size_t((b * channels + c) * inner + i)];
                v = (v - mean[size_t(c)]) * scale + shift;
            }
        }
    y.round_to_type();
    if (!training) return {y};
    return {y, running_mean, running_var};
}

std::vector<nd_tensor> pad(const node& n, const inputs_t& in, int64_t opset) {
    const nd_tensor& x = *in[0];
    const size_t rank = x.shape.size();
    std::vector<int64_t> pads;
    double value = 0;
    if (opset < 11) {
        pads = ints_attr(n, "pads", {});
        value = n.float_attr("value", 0.0);
    } else {
        pads = ints_of(*in[1]);
        if (in.size() > 2 && in[2] && !in[2]->data.empty()) value = in[2]->data[0];
    }
    if (pads.size() != 2 * rank) throw std::runtime_error("pads must hold two entries per dimension");
    const attribute* m = n.attr("mode");
    const std::string mode = m && m->s ? *m->s : "constant";
    if (mode != "constant" && mode != "reflect" && mode != "edge") throw std::runtime_error("pad mode '" + mode + "' is not supported");
    nd_tensor out;
    out.type = x.type;
    for (size_t d = 0; d < rank; ++d) out.shape.push_back(x.shape[d] + pads[d] + pads[d + rank]);
    check_shape(out.shape);
    out.data.resize(size_t(out.size()));
    const auto xs = strides_of(x.shape);
    std::vector<int64_t> index(rank, 0);
    for (int64_t i = 0; i < out.size(); ++i) {
        int64_t offset = 0;
        bool constant = false;
        for (size_t d = 0; d < rank; ++d) {
            int64_t p = index[d] - pads[d];
            const int64_t len = x.shape[d];
            if (p < 0 || p >= len) {
                if (mode == "constant") constant = true;
                else if (mode == "edge") p = std::clamp<int64_t>(p, 0, len - 1);
                else {  // reflect, without repeating the edge
                    const int64_t period = 2 * (len - 1);
                    p = period ? ((p % period) + period) % period : 0;
                    if (p >= len) p = period - p;
                }
            }
            offset += p * xs[d];
        }
        out.data[size_t(i)] = constant ? value : x.data[size_t(offset)];
        for (size_t d = rank; d-- > 0;) {
            if (++index[d] < out.shape[d]) break;
            index[d] = 0;
        }
    }
    out.round_to_type();
    return {out};
}

}  // namespace

void register_nn_ops(std::map<std::string, op_fn>& t) {
    t["Conv"] = conv;
    t["MaxPool"] = [](const node& n, const inputs_t& in, int64_t) { return pool(n, in, true); };
    t["AveragePool"] = [](const node& n, const inputs_t& in, int64_t) { return pool(n, in, false); };
    t["GlobalAveragePool"] = [](const node&, const inputs_t& in, int64_t) { return global_pool(*in[0], false); };
    t["GlobalMaxPool"] = [](const node&, const inputs_t& in, int64_t) { return global_pool(*in[0], true); };
    t["BatchNormalization"] = batch_norm;
    t["Pad"] = pad;
    // Quantize/DequantizeLinear, per tensor or along `axis` (opset 13), as QDQ graphs use.
    auto per_axis = [](const node& n, const nd_tensor& x, const nd_tensor& scale, int64_t opset) {
        // For element i: which scale it uses.
        if (scale.shape.empty() || scale.size() == 1) return std::function<size_t(int64_t)>([](int64_t) { return size_t(0); });
        const int64_t axis = norm_axis(opset >= 13 ? n.int_attr("axis", 1) : 1, x.shape.size());
        int64_t inner = 1;
        for (size_t d = size_t(axis) + 1; d < x.shape.size(); ++d) inner *= x.shape[d];
        const int64_t len = x.shape[size_t(axis)];
        if (scale.size() != len)
            throw std::runtime_error("the scale holds " + std::to_string(scale.size()) + " values, axis " + std::to_string(axis) +
                                     " has " + std::to_string(len));
        return std::function<size_t(int64_t)>([inner, len](int64_t i) { return size_t((i / inner) % len); });
    };
    t["QuantizeLinear"] = [per_axis](const node& n, const inputs_t& in, int64_t opset) {
        const nd_tensor& x = *in[0];
        const nd_tensor& scale = *in[1];
        const nd_tensor* zp = in.size() > 2 ? in[2] : nullptr;
        if (zp && zp->size() != scale.size()) throw std::runtime_error("the zero point and the scale differ in size");
        const element type = zp ? zp->type : element::u8;
        const double lo = type == element::u8 ? 0 : -128, hi = type == element::u8 ? 255 : 127;
        const auto which = per_axis(n, x, scale, opset);
        nd_tensor y = x;
        y.type = type;
        for (int64_t i = 0; i < x.size(); ++i) {
            const size_t s = which(i);
            const double q = std::nearbyint(x.data[size_t(i)] / scale.data[s]) + (zp ? zp->data[s] : 0.0);
            y.data[size_t(i)] = std::clamp(q, lo, hi);
        }
        return std::vector<nd_tensor>{y};
    };
    t["DequantizeLinear"] = [per_axis](const node& n, const inputs_t& in, int64_t opset) {
        const nd_tensor& x = *in[0];
        const nd_tensor& scale = *in[1];
        const nd_tensor* zp = in.size() > 2 ? in[2] : nullptr;
        if (zp && zp->size() != scale.size()) throw std::runtime_error("the zero point and the scale differ in size");
        const auto which = per_axis(n, x, scale, opset);
        nd_tensor y = x;
        y.type = scale.type;
        for (int64_t i = 0; i < x.size(); ++i) {
            const size_t s = which(i);
            y.data[size_t(i)] = (x.data[size_t(i)] - (zp ? zp->data[s] : 0.0)) * scale.data[s];
        }
        y.round_to_type();
        return std::vector<nd_tensor>{y};
    };
    t["Dropout"] = [](const node& n, const inputs_t& in, int64_t opset) {
        // Inference: the identity, with an all-true mask. Training with a nonzero ratio is
        // random by definition.
        const double ratio = opset < 12 ? n.float_attr("ratio", 0.5) : (in.size() > 1 && in[1] ? in[1]->data.at(0) : 0.5);
        const bool training = opset >= 12 && in.size() > 2 && in[2] && in[2]->data.at(0) != 0;
        if (training && ratio != 0) throw random_op_error("training-mode Dropout draws a random mask");
        nd_tensor mask = *in[0];
        mask.type = element::boolean;
        std::fill(mask.data.begin(), mask.data.end(), 1.0);
        return std::vector<nd_tensor>{*in[0], mask};
    };
}

}  // namespace shrink::onnx_import::detail
