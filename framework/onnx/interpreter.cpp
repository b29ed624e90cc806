#include "onnx/interpreter.hpp"
#include "onnx/interpreter_detail.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>
#include <stdexcept>

namespace shrink::onnx_import {

namespace detail {

int64_t norm_axis(int64_t axis, size_t rank) {
    const int64_t r = int64_t(rank);
    if (axis < -r || axis >= std::max<int64_t>(r, 1)) throw std::runtime_error("axis " + std::to_string(axis) + " out of range");
    return axis < 0 ? axis + r : axis;
}

/// The integers a tensor holds (shapes, axes, indices). Values are held as doubles: one
/// outside int64's range (or not finite) is refused, not converted (which is undefined).
std::vector<int64_t> ints_of(const nd_tensor& t) {
    std::vector<int64_t> out;
    for (double v : t.data) {
        if (!(v >= -9.2e18 && v <= 9.2e18)) throw std::runtime_error("value " + std::to_string(v) + " is not a 64-bit integer");
        out.push_back(int64_t(v));
    }
    return out;
}

/// Elementwise over broadcast inputs; `f` maps the input values at one position.
nd_tensor broadcast_map(const inputs_t& in, element out_type, const std::function<double(const double*)>& f) {
    std::vector<int64_t> shape;
    for (const nd_tensor* t : in) shape = broadcast_shapes(shape, t->shape);
    check_shape(shape);
    nd_tensor out;
    out.type = out_type;
    out.shape = shape;
    const int64_t n = out.size();
    out.data.resize(size_t(n));
    const size_t rank = shape.size();
    // Per input: stride per output dimension (0 where broadcast).
    std::vector<std::vector<int64_t>> strides;
    for (const nd_tensor* t : in) {
        const auto s = strides_of(t->shape);
        std::vector<int64_t> b(rank, 0);
        for (size_t d = 0; d < t->shape.size(); ++d) {
            const size_t od = rank - t->shape.size() + d;
            b[od] = t->shape[d] == 1 ? 0 : s[d];
        }
        strides.push_back(b);
    }
    std::vector<int64_t> index(rank, 0);
    std::vector<double> values(in.size());
    for (int64_t i = 0; i < n; ++i) {
        for (size_t k = 0; k < in.size(); ++k) {
            int64_t off = 0;
            for (size_t d = 0; d < rank; ++d) off += index[d] * strides[k][d];
            values[k] = in[k]->data[size_t(off)];
        }
        out.data[size_t(i)] = f(values.data());
        for (size_t d = rank; d-- > 0;) {
            if (++index[d] < shape[d]) break;
            index[d] = 0;
        }
    }
    out.round_to_type();
    return out;
}

nd_tensor unary(const nd_tensor& x, const std::function<double(double)>& f) {
    return broadcast_map({&x}, x.type, [&](const double* v) { return f(v[0]); });
}

nd_tensor integer_divide_aware(const nd_tensor& a, const nd_tensor& b) {
    return broadcast_map({&a, &b}, a.type, [&](const double* v) {
        return is_integer(a.type) ? std::trunc(v[0] / v[1]) : v[0] / v[1];
    });
}

/// Reduces over `axes` (all when empty); `init` and `step` accumulate, `finish` maps
/// (accumulator, count) to the result.
nd_tensor reduce(const nd_tensor& x, std::vector<int64_t> axes, bool keepdims, double init,
                 const std::function<double(double, double)>& step, const std::function<double(double, int64_t)>& finish) {
    const size_t rank = x.shape.size();
    std::vector<bool> reduced(rank, axes.empty());
    for (int64_t& a : axes) reduced[size_t(norm_axis(a, rank))] = true;
    std::vector<int64_t> out_shape, kept_shape;
    for (size_t d = 0; d < rank; ++d) {
        kept_shape.push_back(reduced[d] ? 1 : x.shape[d]);
        if (!reduced[d] || keepdims) out_shape.push_back(reduced[d] ? 1 : x.shape[d]);
    }
    nd_tensor out;
    out.type = x.type;
    out.shape = out_shape;
    int64_t n = 1;
    for (int64_t d : kept_shape) n *= d;
    std::vector<double> acc(size_t(n), init);
    std::vector<int64_t> count(size_t(n), 0);
    const auto ks = strides_of(kept_shape);
    std::vector<int64_t> index(rank, 0);
    for (int64_t i = 0; i < x.size(); ++i) {
        int64_t o = 0;
        for (size_t d = 0; d < rank; ++d) o += (reduced[d] ? 0 : index[d]) * ks[d];
        acc[size_t(o)] = step(acc[size_t(o)], x.data[size_t(i)]);
        ++count[size_t(o)];
        for (size_t d = rank; d-- > 0;) {
            if (++index[d] < x.shape[d]) break;
            index[d] = 0;
        }
    }
    out.data.resize(size_t(n));
    for (int64_t i = 0; i < n; ++i) out.data[size_t(i)] = finish(acc[size_t(i)], count[size_t(i)]);
    out.round_to_type();
    return out;
}

/// Softmax-like ops: `f` maps one slice (in place) of `len` values at `stride`.
nd_tensor along_axis(const nd_tensor& x, int64_t axis, bool coerce_2d, const std::function<void(double*, int64_t)>& f) {
    nd_tensor out = x;
    const size_t rank = x.shape.size();
    if (rank == 0) {
        f(out.data.data(), 1);
        return out;
    }
    const int64_t a = norm_axis(axis, rank);
    int64_t outer = 1, len = 1, inner = 1;
    for (size_t d = 0; d < rank; ++d) {
        if (coerce_2d) (int64_t(d) < a ? outer : len) *= x.shape[d];
        else (int64_t(d) < a ? outer : int64_t(d) == a ? len : inner) *= x.shape[d];
    }
    std::vector<double> slice(static_cast<size_t>(len));
    for (int64_t o = 0; o < outer; ++o)
        for (int64_t in = 0; in < inner; ++in) {
            for (int64_t k = 0; k < len; ++k) slice[size_t(k)] = out.data[size_t((o * len + k) * inner + in)];
            f(slice.data(), len);
            for (int64_t k = 0; k < len; ++k) out.data[size_t((o * len + k) * inner + in)] = slice[size_t(k)];
        }
    out.round_to_type();
    return out;
}

nd_tensor matmul(const nd_tensor& a_in, const nd_tensor& b_in) {
    if (a_in.shape.empty() || b_in.shape.empty()) throw std::runtime_error("MatMul takes tensors of rank 1 or more");
    nd_tensor a = a_in, b = b_in;
    const bool a_vec = a.shape.size() == 1, b_vec = b.shape.size() == 1;
    if (a_vec) a.shape.insert(a.shape.begin(), 1);
    if (b_vec) b.shape.push_back(1);
    const int64_t m = a.shape[a.shape.size() - 2], k = a.shape.back(), n = b.shape.back();
    if (b.shape[b.shape.size() - 2] != k) throw std::runtime_error("MatMul inner dimensions differ");
    const std::vector<int64_t> ab(a.shape.begin(), a.shape.end() - 2), bb(b.shape.begin(), b.shape.end() - 2);
    const std::vector<int64_t> batch = broadcast_shapes(ab, bb);
    nd_tensor out;
    out.type = a.type;
    out.shape = batch;
    out.shape.push_back(m);
    out.shape.push_back(n);
    check_shape(out.shape);
    int64_t batches = 1;
    for (int64_t d : batch) batches *= d;
    out.data.assign(size_t(batches * m * n), 0.0);
    auto offset = [&](const std::vector<int64_t>& own, int64_t flat) {
        // Position of batch `flat` (in the broadcast batch shape) in a tensor with batch dims `own`.
        int64_t off = 0, stride = 1;
        for (size_t d = batch.size(); d-- > 0;) {
            const int64_t idx = flat % batch[d];
            flat /= batch[d];
            const size_t od = d - (batch.size() - own.size());
            if (d >= batch.size() - own.size()) {
                if (own[od] != 1) off += idx * stride;
                stride *= own[od];
            }
        }
        return off;
    };
    for (int64_t bi = 0; bi < batches; ++bi) {
        const double* pa = a.data.data() + offset(ab, bi) * m * k;
        const double* pb = b.data.data() + offset(bb, bi) * k * n;
        double* pc = out.data.data() + bi * m * n;
        for (int64_t i = 0; i < m; ++i)
            for (int64_t p = 0; p < k; ++p)
                for (int64_t j = 0; j < n; ++j) pc[i * n + j] += pa[i * k + p] * pb[p * n + j];
    }
    if (a_vec) out.shape.erase(out.shape.end() - 2);
    if (b_vec) out.shape.pop_back();
    out.round_to_type();
    return out;
}

nd_tensor transpose(const nd_tensor& x, std::vector<int64_t> perm) {
    const size_t rank = x.shape.size();
    if (perm.empty())
        for (size_t d = rank; d-- > 0;) perm.push_back(int64_t(d));
    std::vector<int64_t> sorted = perm;
    std::sort(sorted.begin(), sorted.end());
    for (size_t d = 0; d < sorted.size(); ++d)
        if (sorted.size() != rank || sorted[d] != int64_t(d)) throw std::runtime_error("perm is not a permutation of the input's axes");
    nd_tensor out;
    out.type = x.type;
    for (int64_t p : perm) out.shape.push_back(x.shape[size_t(p)]);
    out.data.resize(x.data.size());
    const auto xs = strides_of(x.shape);
    std::vector<int64_t> index(rank, 0);
    for (int64_t i = 0; i < out.size(); ++i) {
        int64_t off = 0;
        for (size_t d = 0; d < rank; ++d) off += index[d] * xs[size_t(perm[d])];
        out.data[size_t(i)] = x.data[size_t(off)];
        for (size_t d = rank; d-- > 0;) {
            if (++index[d] < out.shape[d]) break;
            index[d] = 0;
        }
    }
    return out;
}

nd_tensor reshaped(const nd_tensor& x, std::vector<int64_t> shape) {
    check_shape(shape);
    nd_tensor out = x;
    out.shape = std::move(shape);
    if (out.size() != x.size()) throw std::runtime_error("reshape changes the element count");
    return out;
}

nd_tensor from_ints(const std::vector<int64_t>& v, element type = element::i64) {
    nd_tensor t;
    t.type = type;
    t.shape = {int64_t(v.size())};
    for (int64_t x : v) t.data.push_back(double(x));
    return t;
}

std::vector<int64_t> axes_of(const node& n, const inputs_t& in, size_t input_index, int64_t opset, int64_t input_from_opset) {
    if (opset >= input_from_opset) return in.size() > input_index && in[input_index] ? ints_of(*in[input_index]) : std::vector<int64_t>{};
    const attribute* a = n.attr("axes");
    return a ? a->ints : std::vector<int64_t>{};
}

}  // namespace detail

namespace {

using namespace detail;

op_fn unary_op(std::function<double(double)> f) {
    return [f](const node&, const inputs_t& in, int64_t) { return std::vector<nd_tensor>{unary(*in[0], f)}; };
}

op_fn binary_op(std::function<double(double, double)> f) {
    return [f](const node&, const inputs_t& in, int64_t) {
        return std::vector<nd_tensor>{broadcast_map({in[0], in[1]}, in[0]->type, [&](const double* v) { return f(v[0], v[1]); })};
    };
}

op_fn compare_op(std::function<bool(double, double)> f) {
    return [f](const node&, const inputs_t& in, int64_t) {
        return std::vector<nd_tensor>{broadcast_map({in[0], in[1]}, element::boolean, [&](const double* v) { return f(v[0], v[1]) ? 1.0 : 0.0; })};
    };
}

op_fn variadic_op(std::function<double(double, double)> f, bool mean = false) {
    return [f, mean](const node&, const inputs_t& in, int64_t) {
        nd_tensor acc = *in[0];
        for (size_t k = 1; k < in.size(); ++k) acc = broadcast_map({&acc, in[k]}, acc.type, [&](const double* v) { return f(v[0], v[1]); });
        if (mean) acc = unary(acc, [&](double v) { return v / double(in.size()); });
        return std::vector<nd_tensor>{acc};
    };
}

op_fn reduce_op(double init, std::function<double(double, double)> step, std::function<double(double, int64_t)> finish,
                int64_t axes_input_from) {
    return [=](const node& n, const inputs_t& in, int64_t opset) {
        std::vector<int64_t> axes = axes_of(n, in, 1, opset, axes_input_from);
        if (axes.empty() && n.int_attr("noop_with_empty_axes", 0)) return std::vector<nd_tensor>{*in[0]};
        return std::vector<nd_tensor>{reduce(*in[0], axes, n.int_attr("keepdims", 1) != 0, init, step, finish)};
    };
}

double sigmoid(double v) { return 1 / (1 + std::exp(-v)); }

const std::map<std::string, op_fn>& ops() {
    static const std::map<std::string, op_fn> table = [] {
        std::map<std::string, op_fn> t;
        t["Relu"] = unary_op([](double v) { return v > 0 ? v : 0; });
        t["Sigmoid"] = unary_op(sigmoid);
        t["Tanh"] = unary_op([](double v) { return std::tanh(v); });
        t["Erf"] = unary_op([](double v) { return std::erf(v); });
        t["Abs"] = unary_op([](double v) { return std::fabs(v); });
        t["Neg"] = unary_op([](double v) { return -v; });
        t["Exp"] = unary_op([](double v) { return std::exp(v); });
        t["Log"] = unary_op([](double v) { return std::log(v); });
        t["Sqrt"] = unary_op([](double v) { return std::sqrt(v); });
        t["Reciprocal"] = unary_op([](double v) { return 1 / v; });
        t["Floor"] = unary_op([](double v) { return std::floor(v); });
        t["Ceil"] = unary_op([](double v) { return std::ceil(v); });
        t["Round"] = unary_op([](double v) { return std::nearbyint(v); });  // halves to even, as ONNX says
        t["Sign"] = unary_op([](double v) { return double((v > 0) - (v < 0)); });
        t["Softsign"] = unary_op([](double v) { return v / (1 + std::fabs(v)); });
        t["Softplus"] = unary_op([](double v) { return std::log1p(std::exp(v)); });
        t["Identity"] = [](const node&, const inputs_t& in, int64_t) { return std::vector<nd_tensor>{*in[0]}; };
        t["LeakyRelu"] = [](const node& n, const inputs_t& in, int64_t) {
            const double a = n.float_attr("alpha", 0.01);
            return std::vector<nd_tensor>{unary(*in[0], [a](double v) { return v >= 0 ? v : a * v; })};
        };
        t["Gelu"] = [](const node& n, const inputs_t& in, int64_t) {  // opset 20
            const attribute* a = n.attr("approximate");
            const std::string approximate = a && a->s ? *a->s : "none";
            if (approximate == "none")
                return std::vector<nd_tensor>{unary(*in[0], [](double v) { return 0.5 * v * (1 + std::erf(v * M_SQRT1_2)); })};
            if (approximate != "tanh") throw std::runtime_error("approximate '" + approximate + "' is not a Gelu approximation");
            const double beta = std::sqrt(2 / M_PI);
            return std::vector<nd_tensor>{unary(*in[0], [beta](double v) { return 0.5 * v * (1 + std::tanh(beta * (v + 0.044715 * v * v * v))); })};
        };
        t["Elu"] = [](const node& n, const inputs_t& in, int64_t) {
            const double a = n.float_attr("alpha", 1.0);
            return std::vector<nd_tensor>{unary(*in[0], [a](double v) { return v >= 0 ? v : a * (std::exp(v) - 1); })};
        };
        t["Selu"] = [](const node& n, const inputs_t& in, int64_t) {
            const double a = n.float_attr("alpha", 1.67326319217681884765625), g = n.float_attr("gamma", 1.05070102214813232421875);
            return std::vector<nd_tensor>{unary(*in[0], [a, g](double v) { return g * (v > 0 ? v : a * (std::exp(v) - 1)); })};
        };
        t["HardSigmoid"] = [](const node& n, const inputs_t& in, int64_t) {
            const double a = n.float_attr("alpha", 0.2), b = n.float_attr("beta", 0.5);
            return std::vector<nd_tensor>{unary(*in[0], [a, b](double v) { return std::max(0.0, std::min(1.0, a * v + b)); })};
        };
        t["Add"] = binary_op([](double a, double b) { return a + b; });
        t["Sub"] = binary_op([](double a, double b) { return a - b; });
        t["Mul"] = binary_op([](double a, double b) { return a * b; });
        t["Div"] = [](const node&, const inputs_t& in, int64_t) { return std::vector<nd_tensor>{integer_divide_aware(*in[0], *in[1])}; };
        t["Pow"] = binary_op([](double a, double b) { return std::pow(a, b); });
        t["Max"] = variadic_op([](double a, double b) { return std::max(a, b); });
        t["Min"] = variadic_op([](double a, double b) { return std::min(a, b); });
        t["Sum"] = variadic_op([](double a, double b) { return a + b; });
        t["Mean"] = variadic_op([](double a, double b) { return a + b; }, true);
        t["Equal"] = compare_op([](double a, double b) { return a == b; });
        t["Less"] = compare_op([](double a, double b) { return a < b; });
        t["LessOrEqual"] = compare_op([](double a, double b) { return a <= b; });
        t["Greater"] = compare_op([](double a, double b) { return a > b; });
        t["GreaterOrEqual"] = compare_op([](double a, double b) { return a >= b; });
        t["And"] = compare_op([](double a, double b) { return a != 0 && b != 0; });
        t["Or"] = compare_op([](double a, double b) { return a != 0 || b != 0; });
        t["Xor"] = compare_op([](double a, double b) { return (a != 0) != (b != 0); });
        t["Not"] = [](const node&, const inputs_t& in, int64_t) {
            return std::vector<nd_tensor>{broadcast_map({in[0]}, element::boolean, [](const double* v) { return v[0] != 0 ? 0.0 : 1.0; })};
        };
        t["Where"] = [](const node&, const inputs_t& in, int64_t) {
            return std::vector<nd_tensor>{broadcast_map({in[0], in[1], in[2]}, in[1]->type, [](const double* v) { return v[0] != 0 ? v[1] : v[2]; })};
        };
        t["Clip"] = [](const node& n, const inputs_t& in, int64_t opset) {
            double lo = -std::numeric_limits<double>::infinity(), hi = std::numeric_limits<double>::infinity();
            if (opset < 11) {
                lo = n.float_attr("min", lo);
                hi = n.float_attr("max", hi);
            } else {
                if (in.size() > 1 && in[1]) lo = in[1]->data.at(0);
                if (in.size() > 2 && in[2]) hi = in[2]->data.at(0);
            }
            return std::vector<nd_tensor>{unary(*in[0], [lo, hi](double v) { return std::min(std::max(v, lo), hi); })};
        };
        t["MatMul"] = [](const node&, const inputs_t& in, int64_t) { return std::vector<nd_tensor>{matmul(*in[0], *in[1])}; };
        t["Gemm"] = [](const node& n, const inputs_t& in, int64_t) {
            if (in[0]->shape.size() != 2 || in[1]->shape.size() != 2) throw std::runtime_error("Gemm takes two matrices");
            nd_tensor a = n.int_attr("transA", 0) ? transpose(*in[0], {}) : *in[0];
            nd_tensor b = n.int_attr("transB", 0) ? transpose(*in[1], {}) : *in[1];
            const double alpha = n.float_attr("alpha", 1.0), beta = n.float_attr("beta", 1.0);
            nd_tensor y = matmul(a, b);
            y = unary(y, [alpha](double v) { return alpha * v; });
            if (in.size() > 2 && in[2]) y = broadcast_map({&y, in[2]}, y.type, [beta](const double* v) { return v[0] + beta * v[1]; });
            return std::vector<nd_tensor>{y};
        };
        auto softmax_like = [](bool log, bool hard) {
            return [log, hard](const node& n, const inputs_t& in, int64_t opset) {
                const bool v13 = opset >= 13;
                const int64_t axis = n.int_attr("axis", v13 ? -1 : 1);
                return std::vector<nd_tensor>{along_axis(*in[0], axis, !v13, [log, hard](double* x, int64_t len) {
                    const double top = *std::max_element(x, x + len);
                    if (hard) {
                        const int64_t at = std::max_element(x, x + len) - x;
                        for (int64_t k = 0; k < len; ++k) x[k] = k == at ? 1 : 0;
                        return;
                    }
                    double sum = 0;
                    for (int64_t k = 0; k < len; ++k) sum += std::exp(x[k] - top);
                    for (int64_t k = 0; k < len; ++k) x[k] = log ? x[k] - top - std::log(sum) : std::exp(x[k] - top) / sum;
                })};
            };
        };
        t["Softmax"] = softmax_like(false, false);
        t["LogSoftmax"] = softmax_like(true, false);
        t["Hardmax"] = softmax_like(false, true);
        t["Flatten"] = [](const node& n, const inputs_t& in, int64_t) {
            const nd_tensor& x = *in[0];
            const int64_t rank = int64_t(x.shape.size()), given = n.int_attr("axis", 1);
            const int64_t axis = given < 0 ? given + rank : given;
            if (axis < 0 || axis > rank) throw std::runtime_error("axis " + std::to_string(given) + " out of range");  // rank itself is allowed
            int64_t outer = 1;
            for (int64_t d = 0; d < axis; ++d) outer *= x.shape[size_t(d)];
            return std::vector<nd_tensor>{reshaped(x, {outer, outer ? x.size() / outer : 0})};
        };
        t["Reshape"] = [](const node& n, const inputs_t& in, int64_t) {
            const nd_tensor& x = *in[0];
            std::vector<int64_t> shape = ints_of(*in[1]);
            const bool allowzero = n.int_attr("allowzero", 0) != 0;
            int64_t known = 1, infer = -1;
            for (size_t d = 0; d < shape.size(); ++d) {
                if (shape[d] < -1 || shape[d] > max_elements) throw std::runtime_error("Reshape to a malformed shape");
                if (shape[d] == 0 && !allowzero) shape[d] = x.shape.at(d);
                if (shape[d] == -1) {
                    if (infer >= 0) throw std::runtime_error("Reshape infers more than one dimension");
                    infer = int64_t(d);
                } else if (shape[d] && known > max_elements / shape[d]) {
                    throw std::runtime_error("Reshape to more than 2^27 elements");
                } else {
                    known *= shape[d];
                }
            }
            if (infer >= 0) shape[size_t(infer)] = known ? x.size() / known : 0;
            return std::vector<nd_tensor>{reshaped(x, shape)};
        };
        t["Transpose"] = [](const node& n, const inputs_t& in, int64_t) {
            const attribute* p = n.attr("perm");
            return std::vector<nd_tensor>{transpose(*in[0], p ? p->ints : std::vector<int64_t>{})};
        };
        t["Concat"] = [](const node& n, const inputs_t& in, int64_t) {
            const int64_t axis = norm_axis(n.int_attr("axis", 0), in[0]->shape.size());
            for (const nd_tensor* t : in) {
                if (!t) throw std::runtime_error("an input is empty");
                bool fits = t->shape.size() == in[0]->shape.size();
                for (size_t d = 0; fits && d < t->shape.size(); ++d) fits = int64_t(d) == axis || t->shape[d] == in[0]->shape[d];
                if (!fits) throw std::runtime_error("inputs differ in shape outside the axis");
            }
            nd_tensor out;
            out.type = in[0]->type;
            out.shape = in[0]->shape;
            out.shape[size_t(axis)] = 0;
            for (const nd_tensor* t : in) out.shape[size_t(axis)] += t->shape[size_t(axis)];
            int64_t outer = 1;
            for (int64_t d = 0; d < axis; ++d) outer *= out.shape[size_t(d)];
            for (int64_t o = 0; o < outer; ++o)
                for (const nd_tensor* t : in) {
                    const int64_t chunk = outer ? t->size() / outer : 0;
                    out.data.insert(out.data.end(), t->data.begin() + o * chunk, t->data.begin() + (o + 1) * chunk);
                }
            return std::vector<nd_tensor>{out};
        };
        t["Squeeze"] = [](const node& n, const inputs_t& in, int64_t opset) {
            const nd_tensor& x = *in[0];
            std::vector<int64_t> axes = axes_of(n, in, 1, opset, 13);
            std::vector<bool> drop(x.shape.size(), axes.empty());
            if (axes.empty())
                for (size_t d = 0; d < x.shape.size(); ++d) drop[d] = x.shape[d] == 1;
            for (int64_t a : axes) drop[size_t(norm_axis(a, x.shape.size()))] = true;
            std::vector<int64_t> shape;
            for (size_t d = 0; d < x.shape.size(); ++d)
                if (!drop[d]) shape.push_back(x.shape[d]);
            return std::vector<nd_tensor>{reshaped(x, shape)};
        };
        t["Unsqueeze"] = [](const node& n, const inputs_t& in, int64_t opset) {
            const nd_tensor& x = *in[0];
            std::vector<int64_t> axes = axes_of(n, in, 1, opset, 13);
            const size_t rank = x.shape.size() + axes.size();
            for (int64_t& a : axes) a = norm_axis(a, rank);
            std::sort(axes.begin(), axes.end());
            if (std::adjacent_find(axes.begin(), axes.end()) != axes.end()) throw std::runtime_error("an axis is repeated");
            std::vector<int64_t> shape;
            size_t k = 0;
            for (size_t d = 0; d < rank; ++d)
                shape.push_back(std::binary_search(axes.begin(), axes.end(), int64_t(d)) ? 1 : x.shape[k++]);
            return std::vector<nd_tensor>{reshaped(x, shape)};
        };
        const double inf = std::numeric_limits<double>::infinity();
        t["ReduceSum"] = reduce_op(0, [](double a, double v) { return a + v; }, [](double a, int64_t) { return a; }, 13);
        t["ReduceMean"] = reduce_op(0, [](double a, double v) { return a + v; }, [](double a, int64_t c) { return a / double(c); }, 18);
        t["ReduceMax"] = reduce_op(-inf, [](double a, double v) { return std::max(a, v); }, [](double a, int64_t) { return a; }, 18);
        t["ReduceMin"] = reduce_op(inf, [](double a, double v) { return std::min(a, v); }, [](double a, int64_t) { return a; }, 18);
        t["ReduceProd"] = reduce_op(1, [](double a, double v) { return a * v; }, [](double a, int64_t) { return a; }, 18);
        t["ReduceSumSquare"] = reduce_op(0, [](double a, double v) { return a + v * v; }, [](double a, int64_t) { return a; }, 18);
        t["ReduceL1"] = reduce_op(0, [](double a, double v) { return a + std::fabs(v); }, [](double a, int64_t) { return a; }, 18);
        t["ReduceL2"] = reduce_op(0, [](double a, double v) { return a + v * v; }, [](double a, int64_t) { return std::sqrt(a); }, 18);
        t["ReduceLogSum"] = reduce_op(0, [](double a, double v) { return a + v; }, [](double a, int64_t) { return std::log(a); }, 18);
        t["ReduceLogSumExp"] = reduce_op(0, [](double a, double v) { return a + std::exp(v); }, [](double a, int64_t) { return std::log(a); }, 18);
        t["Constant"] = [](const node& n, const inputs_t&, int64_t) {
            if (const attribute* a = n.attr("value"); a && a->t) return std::vector<nd_tensor>{*a->t};
            nd_tensor c;
            if (const attribute* a = n.attr("value_float")) c = {element::f32, {}, {*a->f}};
            else if (const attribute* a = n.attr("value_int")) c = {element::i64, {}, {double(*a->i)}};
            else if (const attribute* a = n.attr("value_floats")) c = {element::f32, {int64_t(a->floats.size())}, a->floats};
            else if (const attribute* a = n.attr("value_ints")) c = from_ints(a->ints);
            else throw std::runtime_error("Constant without a supported value attribute");
            return std::vector<nd_tensor>{c};
        };
        t["Shape"] = [](const node& n, const inputs_t& in, int64_t) {
            const int64_t r = int64_t(in[0]->shape.size());
            int64_t start = n.int_attr("start", 0), end = n.int_attr("end", r);
            start = std::clamp(start < 0 ? start + r : start, int64_t(0), r);
            end = std::clamp(end < 0 ? end + r : end, int64_t(0), r);
            return std::vector<nd_tensor>{from_ints(std::vector<int64_t>(in[0]->shape.begin() + start, in[0]->shape.begin() + std::max(start, end)))};
        };
        t["Size"] = [](const node&, const inputs_t& in, int64_t) { return std::vector<nd_tensor>{{element::i64, {}, {double(in[0]->size())}}}; };
        t["Gather"] = [](const node& n, const inputs_t& in, int64_t) {
            const nd_tensor& x = *in[0];
            const nd_tensor& idx = *in[1];
            if (x.shape.empty()) throw std::runtime_error("Gather needs data of rank 1 or more");
            const int64_t axis = norm_axis(n.int_attr("axis", 0), x.shape.size());
            int64_t outer = 1, inner = 1;
            for (int64_t d = 0; d < axis; ++d) outer *= x.shape[size_t(d)];
            for (size_t d = size_t(axis) + 1; d < x.shape.size(); ++d) inner *= x.shape[d];
            const int64_t len = x.shape[size_t(axis)];
            nd_tensor out;
            out.type = x.type;
            out.shape.assign(x.shape.begin(), x.shape.begin() + axis);
            out.shape.insert(out.shape.end(), idx.shape.begin(), idx.shape.end());
            out.shape.insert(out.shape.end(), x.shape.begin() + axis + 1, x.shape.end());
            check_shape(out.shape);  // before growing it: indices times slices can be large
            for (int64_t o = 0; o < outer; ++o)
                for (double iv : idx.data) {
                    int64_t i = int64_t(iv);
                    if (i < 0) i += len;
                    if (i < 0 || i >= len) throw std::runtime_error("Gather index out of range");
                    const auto begin = x.data.begin() + (o * len + i) * inner;
                    out.data.insert(out.data.end(), begin, begin + inner);
                }
            return std::vector<nd_tensor>{out};
        };
        register_nn_ops(t);
        t["Expand"] = [](const node&, const inputs_t& in, int64_t) {
            nd_tensor shape;
            shape.shape = ints_of(*in[1]);
            check_shape(broadcast_shapes(in[0]->shape, shape.shape));  // before allocating the placeholder
            shape.data.assign(size_t(std::max<int64_t>(shape.size(), 0)), 0.0);
            return std::vector<nd_tensor>{broadcast_map({in[0], &shape}, in[0]->type, [](const double* v) { return v[0]; })};
        };
        return t;
    }();
    return table;
}

/// How many inputs each op takes: the first `min` must be given (non-empty names), up to
/// `max` may be; a variadic op's inputs (Concat, Sum, Max, Min, Mean) must all be given.
/// Checked before an op runs, so an op's code may read in[0..min), or every input of a
/// variadic op, freely.
struct arity {
    size_t min, max;
    bool variadic = false;
};

const std::map<std::string, arity>& arities() {
    static const std::map<std::string, arity> table = [] {
        std::map<std::string, arity> t;
        constexpr size_t many = size_t(1) << 16;
        for (const char* op : {"Relu", "Sigmoid", "Tanh", "Erf", "Abs", "Neg", "Exp", "Log", "Sqrt", "Reciprocal", "Floor", "Ceil",
                               "Round", "Sign", "Softsign", "Softplus", "Identity", "LeakyRelu", "Gelu", "Elu", "Selu", "HardSigmoid", "Not",
                               "Softmax", "LogSoftmax", "Hardmax", "Flatten", "Transpose", "Shape", "Size", "GlobalAveragePool",
                               "GlobalMaxPool", "MaxPool", "AveragePool"})
            t[op] = {1, 1};
        for (const char* op : {"Add", "Sub", "Mul", "Div", "Pow", "And", "Or", "Xor", "Equal", "Greater", "Less", "GreaterOrEqual",
                               "LessOrEqual", "MatMul", "Expand", "Gather", "Reshape"})
            t[op] = {2, 2};
        for (const char* op : {"Concat", "Sum", "Max", "Min", "Mean"}) t[op] = {1, many, true};
        for (const char* op : {"Squeeze", "Unsqueeze", "ReduceL1", "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "ReduceMax",
                               "ReduceMean", "ReduceMin", "ReduceProd", "ReduceSum", "ReduceSumSquare"})
            t[op] = {1, 2};
        t["Where"] = {3, 3};
        t["Clip"] = {1, 3};
        t["Gemm"] = {2, 3};
        t["Conv"] = {2, 3};
        t["BatchNormalization"] = {5, 5};
        t["Dropout"] = {1, 3};
        t["QuantizeLinear"] = {2, 3};
        t["DequantizeLinear"] = {2, 3};
        t["Pad"] = {1, 4};
        t["Constant"] = {0, 0};
        // Every op the interpreter implements has its arity here: an op added without one
        // fails every graph run (and so the conformance test) until it has.
        for (const auto& [name, fn] : ops())
            if (!t.count(name)) throw std::logic_error("the ONNX interpreter declares no arity for " + name);
        return t;
    }();
    return table;
}

/// The elements a graph's computed values may hold together: twice what its initializers
/// and inputs hold (a transposed or reshaped copy of every weight) plus 2^25 (256 MiB of
/// doubles) for activations and everything else (docs/onnx.md, "Bounds").
int64_t value_budget(const graph& g, const std::map<std::string, nd_tensor>& inputs) {
    int64_t given = 0;
    for (const auto& [name, t] : g.initializers) given += int64_t(t.data.size());
    for (const auto& [name, t] : inputs) given += int64_t(t.data.size());
    return 2 * given + (int64_t(1) << 25);
}

std::string where_of(const node& n) { return "node '" + (n.name.empty() ? n.op : n.name) + "' (" + n.op + ")"; }

std::map<std::string, nd_tensor> run(const graph& g, const std::map<std::string, nd_tensor>& inputs, bool keep_all) {
    std::map<std::string, nd_tensor> env = g.initializers;
    for (const auto& [name, t] : inputs) env[name] = t;
    // The last node reading each value: a value nobody reads later is freed (unless every
    // value is asked for), and the graph's values together stay within a budget.
    std::map<std::string, size_t> last_reader;
    for (size_t k = 0; k < g.nodes.size(); ++k)
        for (const std::string& name : g.nodes[k].inputs) last_reader[name] = k;
    const std::set<std::string> outputs(g.outputs.begin(), g.outputs.end());
    element_budget budget(value_budget(g, inputs));
    std::set<std::string> charged;  // computed values (initializers and inputs are in the budget's base)
    // Every node's structure first, before any node computes: domain, op, arity, required
    // inputs named, an output.
    for (const node& n : g.nodes) {
        const std::string where = where_of(n);
        if (!n.domain.empty() && n.domain != "ai.onnx") throw std::runtime_error(where + ": domain '" + n.domain + "' is not supported");
        if (!ops().count(n.op)) throw std::runtime_error(where + ": op not supported");
        const arity a = arities().at(n.op);
        if (n.inputs.size() < a.min || n.inputs.size() > a.max)
            throw std::runtime_error(where + ": takes " + (a.min == a.max ? std::to_string(a.min) : std::to_string(a.min) + " to " + std::to_string(a.max)) +
                                     " inputs, has " + std::to_string(n.inputs.size()));
        for (size_t i = 0; i < (a.variadic ? n.inputs.size() : a.min); ++i)
            if (n.inputs[i].empty()) throw std::runtime_error(where + ": input " + std::to_string(i) + " is required, and its name is empty");
        if (n.outputs.empty() || n.outputs[0].empty()) throw std::runtime_error(where + ": has no output");
    }
    for (size_t k = 0; k < g.nodes.size(); ++k) {
        const node& n = g.nodes[k];
        const std::string where = where_of(n);
        const auto op = ops().find(n.op);
        inputs_t in;
        for (const std::string& name : n.inputs) {
            if (name.empty()) {
                in.push_back(nullptr);
                continue;
            }
            auto it = env.find(name);
            if (it == env.end()) throw std::runtime_error(where + ": input '" + name + "' is not defined before it");
            in.push_back(&it->second);
        }
        std::vector<nd_tensor> out;
        try {
            out = op->second(n, in, g.opset);
        } catch (const random_op_error&) {
            throw;
        } catch (const std::exception& e) {
            throw std::runtime_error(where + ": " + e.what());
        }
        for (size_t o = 0; o < n.outputs.size() && o < out.size(); ++o)
            if (!n.outputs[o].empty()) {
                element_budget::charge(int64_t(out[o].data.size()), where + "'s output '" + n.outputs[o] + "'");
                if (auto old = env.find(n.outputs[o]); old != env.end() && charged.count(n.outputs[o]))
                    element_budget::refund(int64_t(old->second.data.size()));
                charged.insert(n.outputs[o]);
                env[n.outputs[o]] = std::move(out[o]);
            }
        if (keep_all) continue;
        for (const std::string& name : n.inputs)
            if (auto r = last_reader.find(name); r != last_reader.end() && r->second == k && !outputs.count(name))
                if (auto v = env.find(name); v != env.end()) {
                    if (charged.erase(name)) element_budget::refund(int64_t(v->second.data.size()));
                    env.erase(v);
                }
    }
    return env;
}

}  // namespace

const std::set<std::string>& supported_ops() {
    static const std::set<std::string> names = [] {
        std::set<std::string> s;
        for (const auto& [name, fn] : ops()) s.insert(name);
        return s;
    }();
    return names;
}

std::vector<nd_tensor> run_graph(const graph& g, const std::map<std::string, nd_tensor>& inputs) {
    const std::map<std::string, nd_tensor> env = run(g, inputs, false);
    std::vector<nd_tensor> result;
    for (const std::string& name : g.outputs) {
        auto it = env.find(name);
        if (it == env.end()) throw std::runtime_error("graph output '" + name + "' is never produced");
        result.push_back(it->second);
    }
    return result;
}

std::map<std::string, nd_tensor> run_graph_values(const graph& g, const std::map<std::string, nd_tensor>& inputs) {
    return run(g, inputs, true);
}

}  // namespace shrink::onnx_import
