#include "train/student.hpp"

#include "train/reference_models.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace shrink {

model make_student(const model& teacher, double width_scale, uint64_t seed) {
    if (!(width_scale > 0 && width_scale <= 1)) throw std::runtime_error("the student's width_scale must be in (0, 1]");
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
