#include "codebook_kernel.hpp"

#include <shrink/abi.h>
#include <tbb/parallel_for.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace codebook {

const std::array<float, 16> nf4 SHRINK_NF4_TABLE;

namespace {

/// The index of the value of ascending `table` (n entries) nearest to x; ties go down.
int nearest(const float* table, int n, float x) {
    const int hi = int(std::lower_bound(table, table + n, x) - table);
    if (hi == 0) return 0;
    if (hi == n) return n - 1;
    return x - table[hi - 1] <= table[hi] - x ? hi - 1 : hi;
}

/// splitmix64: the k-means++ draws, the same on every platform.
struct draws {
    uint64_t state;
    uint64_t next() {
        uint64_t z = (state += 0x9e3779b97f4a7c15ull);
        z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
        z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
        return z ^ (z >> 31);
    }
    double uniform() { return double(next() >> 11) * 0x1.0p-53; }
};

/// 1-D k-means of `x` into k centroids (ascending); returns the SSE after the start and
/// each iteration, and writes each value's centroid index.
std::vector<double> cluster(const float* x, uint64_t n, int k, int iterations, uint64_t seed, std::vector<float>& centroids,
                            uint8_t* index) {
    std::vector<double> sse;
    centroids.clear();
    if (n == 0) {
        centroids.assign(size_t(k), 0.0f);
        return sse;
    }
    // k-means++: the first centroid uniformly, each next one with probability proportional
    // to the squared distance to the nearest centroid drawn so far.
    draws r{seed};
    std::vector<double> d2(n);
    centroids.push_back(x[r.next() % n]);
    for (uint64_t i = 0; i < n; ++i) d2[i] = double(x[i] - centroids[0]) * double(x[i] - centroids[0]);
    while (int(centroids.size()) < k) {
        double total = 0;
        for (double d : d2) total += d;
        if (total <= 0) break;  // fewer distinct values than centroids
        double pick = r.uniform() * total;
        uint64_t chosen = n - 1;
        for (uint64_t i = 0; i < n; ++i) {
            pick -= d2[i];
            if (pick < 0) {
                chosen = i;
                break;
            }
        }
        const float c = x[chosen];
        centroids.push_back(c);
        for (uint64_t i = 0; i < n; ++i) d2[i] = std::min(d2[i], double(x[i] - c) * double(x[i] - c));
    }
    std::sort(centroids.begin(), centroids.end());
    centroids.erase(std::unique(centroids.begin(), centroids.end()), centroids.end());
    const int m = int(centroids.size());
    auto assign = [&](bool& changed) {
        double s = 0;
        changed = false;
        for (uint64_t i = 0; i < n; ++i) {
            const int j = nearest(centroids.data(), m, x[i]);
            changed |= index[i] != uint8_t(j);
            index[i] = uint8_t(j);
            const double e = double(x[i]) - double(centroids[size_t(j)]);
            s += e * e;
        }
        return s;
    };
    bool changed = false;
    std::fill(index, index + n, uint8_t(255));
    sse.push_back(assign(changed));
    for (int it = 0; it < iterations && changed; ++it) {
        // Each centroid moves to its members' mean (an empty cluster keeps its place),
        // then every value goes to its nearest centroid: neither step raises the SSE.
        std::vector<double> sum(size_t(m), 0.0);
        std::vector<uint64_t> count(size_t(m), 0);
        for (uint64_t i = 0; i < n; ++i) sum[index[i]] += x[i], ++count[index[i]];
        for (int j = 0; j < m; ++j)
            if (count[size_t(j)]) centroids[size_t(j)] = float(sum[size_t(j)] / double(count[size_t(j)]));
        // Means of ordered clusters stay ordered; float rounding may tie two: keep ascending.
        std::sort(centroids.begin(), centroids.end());
        sse.push_back(assign(changed));
    }
    return sse;
}

}  // namespace

nf4_result quantize_nf4(const float* w, uint64_t rows, uint64_t cols, uint64_t group_size) {
    if (group_size == 0) throw std::invalid_argument("nf4 needs a group size");
    const uint64_t groups = (cols + group_size - 1) / group_size;
    nf4_result r;
    r.codes.resize(rows * cols);
    r.scales.resize(rows * groups);
    tbb::parallel_for(uint64_t(0), rows, [&](uint64_t row) {
        for (uint64_t g = 0; g < groups; ++g) {
            const uint64_t first = g * group_size, last = std::min(cols, first + group_size);
            float absmax = 0;
            for (uint64_t c = first; c < last; ++c) absmax = std::max(absmax, std::fabs(w[row * cols + c]));
            r.scales[row * groups + g] = absmax;
            for (uint64_t c = first; c < last; ++c) {
                const float x = absmax > 0 ? w[row * cols + c] / absmax : 0.0f;
                r.codes[row * cols + c] = int8_t(nearest(nf4.data(), 16, x) - 8);
            }
        }
    });
    return r;
}

kmeans_result quantize_kmeans(const float* w, uint64_t rows, uint64_t cols, const kmeans_options& o) {
    if (o.bits < 1 || o.bits > 8) throw std::invalid_argument("k-means bits must be 1 to 8");
    kmeans_result r;
    r.container_bits = o.bits <= 4 ? 4 : 8;
    const int k = 1 << o.bits, slots = 1 << r.container_bits, half = slots / 2;
    const uint64_t tables = o.per_row ? rows : 1, per_table = o.per_row ? cols : rows * cols;
    r.codes.resize(rows * cols);
    r.table.resize(tables * uint64_t(slots));
    std::vector<std::vector<double>> sse(tables);
    tbb::parallel_for(uint64_t(0), tables, [&](uint64_t t) {
        std::vector<float> centroids;
        std::vector<uint8_t> index(per_table);
        // Each table's draws from the seed and its index: the same at any thread count.
        sse[t] = cluster(w + t * per_table, per_table, k, o.iterations, o.seed ^ (t * 0x9e3779b97f4a7c15ull), centroids, index.data());
        for (int j = 0; j < slots; ++j) r.table[t * uint64_t(slots) + uint64_t(j)] = centroids[size_t(std::min(j, int(centroids.size()) - 1))];
        for (uint64_t i = 0; i < per_table; ++i) r.codes[t * per_table + i] = int8_t(int(index[i]) - half);
    });
    size_t longest = 0;
    for (const auto& s : sse) longest = std::max(longest, s.size());
    r.sse.assign(longest, 0.0);
    for (const auto& s : sse)
        for (size_t i = 0; i < longest; ++i) r.sse[i] += s.empty() ? 0.0 : s[std::min(i, s.size() - 1)];
    return r;
}

std::vector<float> decode_kmeans(const kmeans_result& r, uint64_t rows, uint64_t cols, bool per_row) {
    const int slots = 1 << r.container_bits, half = slots / 2;
    std::vector<float> out(rows * cols);
    for (uint64_t i = 0; i < out.size(); ++i) {
        const uint64_t t = per_row ? i / cols : 0;
        out[i] = r.table[t * uint64_t(slots) + uint64_t(r.codes[i] + half)];
    }
    return out;
}

std::vector<float> decode_nf4(const nf4_result& r, uint64_t rows, uint64_t cols, uint64_t group_size) {
    const uint64_t groups = (cols + group_size - 1) / group_size;
    std::vector<float> out(rows * cols);
    for (uint64_t i = 0; i < out.size(); ++i)
        out[i] = nf4[size_t(r.codes[i] + 8)] * r.scales[(i / cols) * groups + (i % cols) / group_size];
    return out;
}

}  // namespace codebook
