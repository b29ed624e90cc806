#include "onnx/patterns.hpp"

#include <algorithm>
#include <cmath>
#include <optional>

namespace shrink::onnx_import {

std::set<std::string> data_independent_values(const graph& g) {
    std::set<std::string> known;
    for (const auto& [name, t] : g.initializers) known.insert(name);
    for (const node& n : g.nodes) {  // topological order (read_model)
        bool independent = n.op == "Shape" || n.op == "Size";
        if (!independent) {
            independent = true;
            for (const std::string& i : n.inputs) independent = independent && (i.empty() || known.count(i));
        }
        if (independent)
            for (const std::string& o : n.outputs) known.insert(o);
    }
    return known;
}

namespace {

/// A value seen as a product: constant · data[0] · data[1] · ...
struct product {
    double constant = 1;
    std::vector<std::string> data;  // sorted, repeats kept (x·x·x holds x three times)
};

bool near(double v, double want) { return std::abs(v - want) <= 1e-4 * std::abs(want); }

/// One attempt at matching a GELU ending at a node; `used` collects the nodes it covers.
class gelu_matcher {
  public:
    gelu_matcher(const graph& g, const std::set<std::string>& known, const std::map<std::string, nd_tensor>& values)
        : g_(g), known_(known), values_(values) {
        for (size_t i = 0; i < g.nodes.size(); ++i) {
            for (const std::string& o : g.nodes[i].outputs) producer_[o] = i;
            std::set<std::string> read(g.nodes[i].inputs.begin(), g.nodes[i].inputs.end());
            for (const std::string& v : read) ++readers_[v];
        }
        for (const std::string& o : g.outputs) ++readers_[o];  // a graph output is read outside the graph
    }

    /// The GELU's input and approximation when node `root`'s output is one.
    std::optional<std::pair<std::string, std::string>> match(size_t root) {
        used_.clear();
        const node& r = g_.nodes[root];
        if ((r.op != "Mul" && r.op != "Div") || r.outputs.size() != 1) return std::nullopt;
        const product p = factors(r.outputs[0], true);
        if (p.data.size() != 2 || !near(p.constant, 0.5)) return std::nullopt;
        for (int swap = 0; swap < 2; ++swap) {
            const std::string& x = p.data[size_t(swap)];
            const std::string& rest = p.data[size_t(1 - swap)];
            const std::set<size_t> before = used_;
            if (erf_part(rest, x)) return std::make_pair(x, std::string("none"));
            used_ = before;
            if (tanh_part(rest, x)) return std::make_pair(x, std::string("tanh"));
            used_ = before;
        }
        return std::nullopt;
    }

    const std::set<size_t>& used() const { return used_; }

  private:
    std::optional<double> scalar(const std::string& v) const {
        if (!known_.count(v)) return std::nullopt;
        auto it = values_.find(v);
        if (it == values_.end() || it->second.size() != 1) return std::nullopt;
        return it->second.data[0];
    }

    /// The node computing `v` when `v` is read only inside the pattern (by one node, and
    /// not a graph output) and that node has op `op`.
    const node* inner(const std::string& v, const char* op) {
        auto it = producer_.find(v);
        if (it == producer_.end() || readers_[v] != 1 || g_.nodes[it->second].op != op) return nullptr;
        used_.insert(it->second);
        return &g_.nodes[it->second];
    }

    /// `v` as constant · data..., through Mul nodes and divisions by a constant. The root
    /// may be read anywhere; the products inside it only by the pattern.
    product factors(const std::string& v, bool root) {
        product p;
        if (auto c = scalar(v)) {
            p.constant = *c;
            return p;
        }
        auto it = producer_.find(v);
        const node* n = it == producer_.end() ? nullptr : &g_.nodes[it->second];
        const bool ours = n && (root || readers_[v] == 1) && n->inputs.size() == 2;
        if (ours && n->op == "Mul") {
            used_.insert(it->second);
            product a = factors(n->inputs[0], false), b = factors(n->inputs[1], false);
            a.constant *= b.constant;
            a.data.insert(a.data.end(), b.data.begin(), b.data.end());
            std::sort(a.data.begin(), a.data.end());
            return a;
        }
        if (ours && n->op == "Div") {
            if (auto c = scalar(n->inputs[1]); c && *c != 0) {
                used_.insert(it->second);
                product a = factors(n->inputs[0], false);
                a.constant /= *c;
                return a;
            }
        }
        p.data = {v};
        return p;
    }

    /// `v` = c + t for a constant c ≈ `constant` and one data value t; returns t.
    std::optional<std::string> plus_constant(const std::string& v, double constant) {
        const node* add = inner(v, "Add");
        if (!add || add->inputs.size() != 2) return std::nullopt;
        for (int k = 0; k < 2; ++k)
            if (auto c = scalar(add->inputs[size_t(k)]); c && near(*c, constant) && !scalar(add->inputs[size_t(1 - k)]))
                return add->inputs[size_t(1 - k)];
        return std::nullopt;
    }

    /// `v` = 1 + erf(x / √2).
    bool erf_part(const std::string& v, const std::string& x) {
        const auto t = plus_constant(v, 1.0);
        const node* erf = t ? inner(*t, "Erf") : nullptr;
        if (!erf || erf->inputs.size() != 1) return false;
        const product s = factors(erf->inputs[0], false);
        return s.data == std::vector<std::string>{x} && near(s.constant, M_SQRT1_2);
    }

    /// `v` = 1 + tanh(√(2/π) · (x + 0.044715 · x³)), or with √(2/π) · x · (1 + 0.044715 · x²).
    bool tanh_part(const std::string& v, const std::string& x) {
        constexpr double kappa = 0.044715;
        const double beta = std::sqrt(2.0 / M_PI);
        const auto t = plus_constant(v, 1.0);
        const node* th = t ? inner(*t, "Tanh") : nullptr;
        if (!th || th->inputs.size() != 1) return false;
        const product u = factors(th->inputs[0], false);
        if (!near(u.constant, beta)) return false;
        if (u.data.size() == 1) {  // x + kappa · x³
            const node* add = inner(u.data[0], "Add");
            if (!add || add->inputs.size() != 2) return false;
            for (int k = 0; k < 2; ++k) {
                if (add->inputs[size_t(k)] != x) continue;
                const std::set<size_t> before = used_;
                if (cube_term(add->inputs[size_t(1 - k)], x, kappa)) return true;
                used_ = before;
            }
            return false;
        }
        if (u.data.size() == 2) {  // x · (1 + kappa · x²)
            for (int k = 0; k < 2; ++k) {
                if (u.data[size_t(k)] != x) continue;
                const auto w = plus_constant(u.data[size_t(1 - k)], 1.0);
                if (!w) return false;
                const product p = factors(*w, false);
                return p.data == std::vector<std::string>{x, x} && near(p.constant, kappa);
            }
        }
        return false;
    }

    /// `v` = kappa · x³, the cube as x · x · x or Pow(x, 3).
    bool cube_term(const std::string& v, const std::string& x, double kappa) {
        const product p = factors(v, false);
        if (!near(p.constant, kappa)) return false;
        if (p.data == std::vector<std::string>{x, x, x}) return true;
        if (p.data.size() != 1) return false;
        const node* pow = inner(p.data[0], "Pow");
        if (!pow || pow->inputs.size() != 2 || pow->inputs[0] != x) return false;
        const auto e = scalar(pow->inputs[1]);
        return e && *e == 3.0;
    }

    const graph& g_;
    const std::set<std::string>& known_;
    const std::map<std::string, nd_tensor>& values_;
    std::map<std::string, size_t> producer_;
    std::map<std::string, int> readers_;  // distinct nodes reading a value (+1 for a graph output)
    std::set<size_t> used_;
};

}  // namespace

graph fuse_patterns(const graph& g, const std::map<std::string, nd_tensor>& values) {
    graph out = g;
    const std::set<std::string> known = data_independent_values(g);
    std::optional<gelu_matcher> m;
    m.emplace(out, known, values);
    for (size_t root = 0; root < out.nodes.size(); ++root) {
        const auto found = m->match(root);
        if (!found) continue;
        // The pattern's nodes all come before its root, whose place the Gelu takes: the
        // order stays topological.
        node gelu;
        gelu.name = out.nodes[root].name;
        gelu.op = "Gelu";
        gelu.inputs = {found->first};
        gelu.outputs = out.nodes[root].outputs;
        attribute a;
        a.name = "approximate";
        a.s = found->second;
        gelu.attributes["approximate"] = a;
        std::vector<node> kept;
        size_t new_root = 0;
        for (size_t i = 0; i < out.nodes.size(); ++i) {
            if (i == root) {
                new_root = kept.size();
                kept.push_back(gelu);
            } else if (!m->used().count(i)) {
                kept.push_back(std::move(out.nodes[i]));
            }
        }
        out.nodes = std::move(kept);
        root = new_root;
        m.emplace(out, known, values);  // indices moved
    }
    return out;
}

}  // namespace shrink::onnx_import
