#include "train/student.hpp"

#include "train/reference_models.hpp"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace shrink {

namespace {

bool ends_with(const std::string& text, const std::string& tail) {
    return text.size() >= tail.size() && text.compare(text.size() - tail.size(), tail.size(), tail) == 0;
}

/// A decoder's student: the teacher with each MLP narrowed to width_scale of its channels,
/// those whose gate, up and down weights are largest (sum of squares), in their order.
/// Attention, embeddings and norms stay the teacher's, so the student starts out
/// predicting and distillation refines it. config.json's intermediate_size follows.
model decoder_student(const model& teacher, double width_scale) {
    model s = teacher;
    int64_t kept = 0;
    for (const layer& l : teacher.layers) {
        if (!ends_with(l.name, ".mlp.gate_proj")) continue;
        const std::string block = l.name.substr(0, l.name.size() - std::string("gate_proj").size());
        const layer* up = teacher.find_layer(block + "up_proj");
        const layer* down = teacher.find_layer(block + "down_proj");
        if (!up || !down || !l.bias.empty() || !up->bias.empty()) throw std::runtime_error("layer '" + l.name + "': not a SwiGLU MLP a student can narrow");
        const std::vector<float> g = teacher.at(l.weight).decode(), u = teacher.at(up->weight).decode(), d = teacher.at(down->weight).decode();
        const int64_t width = teacher.at(l.weight).shape[0], hidden = teacher.at(l.weight).shape[1], out = teacher.at(down->weight).shape[0];
        kept = std::max<int64_t>(1, std::llround(double(width) * width_scale));
        std::vector<std::pair<double, int64_t>> score;
        for (int64_t c = 0; c < width; ++c) {
            double n = 0;
            for (int64_t i = 0; i < hidden; ++i) n += double(g[size_t(c * hidden + i)]) * g[size_t(c * hidden + i)] + double(u[size_t(c * hidden + i)]) * u[size_t(c * hidden + i)];
            for (int64_t o = 0; o < out; ++o) n += double(d[size_t(o * width + c)]) * d[size_t(o * width + c)];
            score.push_back({-n, c});
        }
        std::sort(score.begin(), score.end());
        std::vector<int64_t> keep;
        for (int64_t k = 0; k < kept; ++k) keep.push_back(score[size_t(k)].second);
        std::sort(keep.begin(), keep.end());
        auto rows_of = [&](const std::vector<float>& w) {
            std::vector<float> v;
            for (int64_t c : keep) v.insert(v.end(), w.begin() + c * hidden, w.begin() + (c + 1) * hidden);
            return v;
        };
        std::vector<float> down_cols;
        for (int64_t o = 0; o < out; ++o)
            for (int64_t c : keep) down_cols.push_back(d[size_t(o * width + c)]);
        auto fresh = [](std::vector<int64_t> shape, std::vector<float> values) {
            tensor t;
            t.shape = std::move(shape);
            t.values = std::move(values);
            return t;
        };
        s.at(l.weight) = fresh({kept, hidden}, rows_of(g));
        s.at(up->weight) = fresh({kept, hidden}, rows_of(u));
        s.at(down->weight) = fresh({out, kept}, std::move(down_cols));
    }
    for (layer& l : s.layers) l.input_quantization.reset();
    if (auto cfg = s.info.find("hf.config"); cfg != s.info.end() && kept > 0) {
        nlohmann::json config = nlohmann::json::parse(cfg->second);
        config["intermediate_size"] = kept;
        cfg->second = config.dump(2) + "\n";
    }
    return s;
}

}  // namespace

model make_student(const model& teacher, double width_scale, uint64_t seed) {
    if (!(width_scale > 0 && width_scale <= 1)) throw std::runtime_error("the student's width_scale must be in (0, 1]");
    if (std::any_of(teacher.layers.begin(), teacher.layers.end(), [](const layer& l) { return l.kind() == op_kind::attention; })) {
        model s = decoder_student(teacher, width_scale);
        s.info["student_width_scale"] = std::to_string(width_scale);
        s.validate();
        return s;
    }
    model s = teacher;
    const layer* last = nullptr;
    for (const layer& l : s.layers)
        if (has_matrix(l.op)) last = &l;
    std::map<std::string, std::vector<int64_t>> shapes;
    shapes[s.input] = s.input_shape.empty() ? std::vector<int64_t>{s.input_features} : s.input_shape;
    auto fresh = [](std::vector<int64_t> shape) {
        tensor t;
        t.shape = std::move(shape);
        t.values.assign(t.element_count(), 0.0f);
        return t;
    };
    for (layer& l : s.layers) {
        const std::string where = "layer '" + l.name + "': ";
        std::vector<std::vector<int64_t>> ins;
        for (const std::string& in : l.inputs()) ins.push_back(shapes.at(in));
        l.input_quantization.reset();
        if (has_matrix(l.op)) {
            const tensor& w = teacher.at(l.weight);
            const int64_t out = &l == last ? w.shape[0] : std::max<int64_t>(1, std::llround(double(w.shape[0]) * width_scale));
            std::vector<int64_t> shape = w.shape;
            shape[0] = out;
            if (l.kind() == op_kind::linear) {
                shape[1] = 1;
                for (int64_t d : ins[0]) shape[1] *= d;
            } else {
                if (l.win.group != 1) throw std::runtime_error(where + "a grouped conv cannot be narrowed for a student");
                shape[1] = ins[0][0];
            }
            s.at(l.weight) = fresh(shape);
            if (!l.bias.empty()) s.at(l.bias) = fresh({out});
        } else if (l.kind() == op_kind::batchnorm) {
            s.at(l.weight) = fresh({ins[0][0]});
            s.at(l.bias) = fresh({ins[0][0]});
        } else if (l.kind() == op_kind::reshape) {
            int64_t n = 1, want = 1;
            for (int64_t d : ins[0]) n *= d;
            for (int64_t d : l.shape) want *= d;
            if (n != want)
                throw std::runtime_error(where + "reshapes to a fixed shape, which a narrower input no longer fills; "
                                                 "a student of this model needs width_scale 1 before it");
        }
        shapes[l.output] = layer_output_shape(s, l, ins);
    }
    // A factorized pair (layer.a then layer.b) records its rank: the first factor's width.
    for (layer& l : s.layers)
        if (!l.factor_of.empty() && has_matrix(l.op)) {
            const bool first = l.name.size() > 2 && l.name.compare(l.name.size() - 2, 2, ".a") == 0;
            l.rank = uint64_t(s.at(l.weight).shape[first ? 0 : 1]);
        }
    initialize_weights(s, seed);
    s.info["student_width_scale"] = std::to_string(width_scale);
    s.validate();
    return s;
}

}  // namespace shrink
