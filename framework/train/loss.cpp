#include "train/loss.hpp"

#include "train/parallel.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

namespace shrink::train {

namespace {

/// log-softmax of z / temperature, in double.
void log_softmax(const double* z, int64_t n, double temperature, double* out) {
    double top = z[0];
    for (int64_t i = 1; i < n; ++i) top = std::max(top, z[i]);
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += std::exp((z[i] - top) / temperature);
    const double lse = std::log(sum);
    for (int64_t i = 0; i < n; ++i) out[i] = (z[i] - top) / temperature - lse;
}

}  // namespace

template <class T>
double cross_entropy(const T* logits, const int32_t* labels, int64_t rows, int64_t classes, double weight, T* grad) {
    int64_t counted = 0;
    for (int64_t r = 0; r < rows; ++r) counted += labels[r] >= 0;
    if (counted == 0) return 0;
    // Rows are independent: one task each, their losses summed in row order after.
    std::vector<double> row_loss(static_cast<size_t>(rows), 0.0);
    each(rows, [&](int64_t r) {
        const int32_t label = labels[r];
        if (label < 0) return;  // a position that predicts nothing (a window's last token)
        std::vector<double> z(static_cast<size_t>(classes)), lp(static_cast<size_t>(classes));
        for (int64_t c = 0; c < classes; ++c) z[size_t(c)] = double(logits[r * classes + c]);
        log_softmax(z.data(), classes, 1.0, lp.data());
        row_loss[size_t(r)] = -lp[size_t(label)];
        for (int64_t c = 0; c < classes; ++c)
            grad[r * classes + c] += T(weight * (std::exp(lp[size_t(c)]) - (c == label ? 1.0 : 0.0)) / double(counted));
    });
    double total = 0;
    for (double v : row_loss) total += v;
    return total;
}

template <class T>
double distillation(const T* student, const T* teacher, int64_t rows, int64_t classes, double temperature, double weight,
                    T* grad) {
    std::vector<double> zs(static_cast<size_t>(classes)), zt(static_cast<size_t>(classes)), ls(static_cast<size_t>(classes)), lt(static_cast<size_t>(classes));
    const double t2 = temperature * temperature;
    double total = 0;
    for (int64_t r = 0; r < rows; ++r) {
        for (int64_t c = 0; c < classes; ++c) {
            zs[size_t(c)] = double(student[r * classes + c]);
            zt[size_t(c)] = double(teacher[r * classes + c]);
        }
        log_softmax(zs.data(), classes, temperature, ls.data());
        log_softmax(zt.data(), classes, temperature, lt.data());
        for (int64_t c = 0; c < classes; ++c) {
            const double pt = std::exp(lt[size_t(c)]);
            total += t2 * pt * (lt[size_t(c)] - ls[size_t(c)]);
            // d/dz_s of T^2 KL = T (p_s - p_t).
            grad[r * classes + c] += T(weight * temperature * (std::exp(ls[size_t(c)]) - pt) / double(rows));
        }
    }
    return total;
}

template <class T>
double mean_squared(const T* a, const T* b, int64_t rows, int64_t width, double weight, T* grad) {
    double total = 0;
    for (int64_t r = 0; r < rows; ++r)
        for (int64_t i = 0; i < width; ++i) {
            const double d = double(a[r * width + i]) - double(b[r * width + i]);
            total += d * d / double(width);
            grad[r * width + i] += T(weight * 2 * d / double(width) / double(rows));
        }
    return total;
}

template double cross_entropy<float>(const float*, const int32_t*, int64_t, int64_t, double, float*);
template double cross_entropy<double>(const double*, const int32_t*, int64_t, int64_t, double, double*);
template double distillation<float>(const float*, const float*, int64_t, int64_t, double, double, float*);
template double distillation<double>(const double*, const double*, int64_t, int64_t, double, double, double*);
template double mean_squared<float>(const float*, const float*, int64_t, int64_t, double, float*);
template double mean_squared<double>(const double*, const double*, int64_t, int64_t, double, double*);

}  // namespace shrink::train
