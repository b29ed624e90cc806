#include "clip_search.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace clip {

histogram::histogram(double lo_, double hi_, size_t bins) : lo(lo_), hi(hi_), counts(bins, 0.0) {
    if (!(lo <= 0 && 0 <= hi) || bins == 0) throw std::invalid_argument("a histogram spans a range holding 0, in one bin or more");
    if (hi == lo) hi = lo + 1;  // all zeros: any width will do
}

void histogram::add(const float* values, uint64_t n) {
    const double scale = double(counts.size()) / (hi - lo);
    const size_t last = counts.size() - 1;
    for (uint64_t i = 0; i < n; ++i) {
        const double at = (double(values[i]) - lo) * scale;
        counts[at <= 0 ? 0 : std::min(last, size_t(at))] += 1;
    }
}

double histogram::total() const {
    double t = 0;
    for (double c : counts) t += c;
    return t;
}

std::vector<double> candidate_scales(int steps) {
    std::vector<double> t;
    for (int k = 0; k <= steps; ++k) t.push_back(1.0 - 0.875 * double(k) / double(steps));
    return t;
}

range percentile_range(const histogram& h, double p) {
    if (!(p > 50 && p <= 100)) throw std::invalid_argument("percentile must be in (50, 100]");
    const double total = h.total();
    if (total == 0) return {0, 0};
    // The value below which a fraction q of the mass lies, linear within its bin.
    auto quantile = [&](double q) {
        const double want = q * total;
        double below = 0;
        for (size_t b = 0; b < h.counts.size(); ++b) {
            if (below + h.counts[b] >= want && h.counts[b] > 0)
                return h.lo + (double(b) + (want - below) / h.counts[b]) * h.width();
            below += h.counts[b];
        }
        return h.hi;
    };
    return {std::min(0.0, quantile(1 - p / 100)), std::max(0.0, quantile(p / 100))};
}

double quantization_mse(const histogram& h, const range& r) {
    const double step = (r.hi - r.lo) / 255.0, w = h.width();
    double error = 0, total = 0;
    for (size_t b = 0; b < h.counts.size(); ++b) {
        if (h.counts[b] == 0) continue;
        const double center = h.lo + (double(b) + 0.5) * w;
        const double e = center < r.lo ? r.lo - center : center > r.hi ? center - r.hi : 0;
        error += h.counts[b] * (e > 0 ? e * e : step * step / 12);
        total += h.counts[b];
    }
    return total > 0 ? error / total : 0;
}

double quantization_kl(const histogram& h, const range& r) {
    const double w = h.width();
    const size_t n = h.counts.size();
    // The bins whose centers lie in r. P: their counts with everything outside added to
    // the nearest of them; Q: the same bins' own counts merged per level, which do not
    // know the clipped mass (as in TensorRT and MXNet: clipping more costs more).
    size_t first = n, last = 0;
    for (size_t b = 0; b < n; ++b) {
        const double center = h.lo + (double(b) + 0.5) * w;
        if (center >= r.lo && center <= r.hi) first = std::min(first, b), last = b;
    }
    if (first == n) return INFINITY;
    const std::vector<double> inside(h.counts.begin() + long(first), h.counts.begin() + long(last) + 1);
    std::vector<double> p = inside;
    for (size_t b = 0; b < first; ++b) p.front() += h.counts[b];
    for (size_t b = last + 1; b < n; ++b) p.back() += h.counts[b];
    // Each bin's level: where its center rounds on the 256-level grid over r; a level's
    // mass spreads evenly over its bins where P holds any.
    const double step = (r.hi - r.lo) / 255.0;
    auto level = [&](size_t k) { return std::lround((h.lo + (double(first + k) + 0.5) * w - r.lo) / step); };
    std::vector<double> q(p.size(), 0.0);
    for (size_t i = 0; i < p.size();) {
        size_t j = i;
        double mass = 0, used = 0;
        for (; j < p.size() && level(j) == level(i); ++j) mass += inside[j], used += p[j] > 0;
        for (size_t k = i; k < j; ++k) q[k] = p[k] > 0 && used > 0 ? mass / used : 0;
        i = j;
    }
    double p_total = 0, q_total = 0;
    for (size_t k = 0; k < p.size(); ++k) p_total += p[k], q_total += q[k];
    if (p_total == 0) return 0;
    // Where P holds mass and Q none (a level of only clipped mass), Q gets a small floor
    // so the divergence stays finite, as MXNet's smoothing does.
    const double floor = 1e-4 * std::max(q_total, 1.0) / double(p.size());
    double kl = 0;
    for (size_t k = 0; k < p.size(); ++k)
        if (p[k] > 0) kl += p[k] / p_total * std::log((p[k] / p_total) / (std::max(q[k], floor) / std::max(q_total, floor)));
    return kl;
}

namespace {

template <class Cost>
range least(const histogram& h, int steps, Cost cost) {
    range best{h.lo, h.hi};
    double best_cost = INFINITY;
    for (double t : candidate_scales(steps)) {
        const range r{h.lo * t, h.hi * t};
        const double c = cost(h, r);
        if (c < best_cost) best = r, best_cost = c;  // strict: the widest among equals
    }
    return best;
}

}  // namespace

range mse_range(const histogram& h, int steps) { return least(h, steps, quantization_mse); }

range entropy_range(const histogram& h, int steps) { return least(h, steps, quantization_kl); }

}  // namespace clip
