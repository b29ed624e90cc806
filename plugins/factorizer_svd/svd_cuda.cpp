#include "svd_cuda.hpp"

#include <cuda_runtime_api.h>
#include <cusolverDn.h>
#include <shrink/cuda_library.hpp>

#include <stdexcept>
#include <string>

namespace svd::cuda {

namespace {

// cuSOLVER's gesvd, resolved on the first GPU factorization (the library is not linked).
struct gesvd_calls {
    decltype(cusolverDnDgesvd_bufferSize)* buffer_size;
    decltype(cusolverDnDgesvd)* run;
};

const gesvd_calls& gesvd() {
    static const gesvd_calls calls = [] {
        static const shrink::cuda_library lib("cusolver", CUSOLVER_VER_MAJOR);
        return gesvd_calls{lib.symbol<decltype(cusolverDnDgesvd_bufferSize)>("cusolverDnDgesvd_bufferSize"),
                           lib.symbol<decltype(cusolverDnDgesvd)>("cusolverDnDgesvd")};
    }();
    return calls;
}

}  // namespace

decomposition decompose(const shrink::cuda_device& gpu, const float* w, uint64_t rows, uint64_t cols) {
    // gesvd wants m >= n. A wide W's row-major floats are W^T in column-major order already.
    const bool transpose = rows < cols;
    const uint64_t m = transpose ? cols : rows, n = transpose ? rows : cols;
    std::vector<double> a(m * n);
    for (uint64_t r = 0; r < rows; ++r)
        for (uint64_t c = 0; c < cols; ++c) (transpose ? a[r * m + c] : a[c * m + r]) = w[r * cols + c];

    auto handle = static_cast<cusolverDnHandle_t>(gpu.cusolver());
    int lwork = 0;
    if (gesvd().buffer_size(handle, int(m), int(n), &lwork) != CUSOLVER_STATUS_SUCCESS)
        throw std::runtime_error("cuSOLVER: gesvd workspace query failed");
    auto da = gpu.upload(a);
    auto s = gpu.allocate<double>(n);
    auto u = gpu.allocate<double>(m * n);
    auto vt = gpu.allocate<double>(n * n);
    auto work = gpu.allocate<double>(size_t(lwork));
    auto info = gpu.allocate<int>(1);
    const cusolverStatus_t st = gesvd().run(handle, 'S', 'S', int(m), int(n), da.data(), int(m), s.data(), u.data(), int(m),
                                                 vt.data(), int(n), work.data(), lwork, nullptr, info.data());
    if (st != CUSOLVER_STATUS_SUCCESS) throw std::runtime_error("cuSOLVER: gesvd failed with status " + std::to_string(int(st)));
    gpu.synchronize();
    if (const int i = gpu.download(info)[0]; i != 0)
        throw std::runtime_error("cuSOLVER: gesvd did not converge (info " + std::to_string(i) + ")");

    decomposition d;
    d.k = n;
    d.sigma = gpu.download(s);
    const std::vector<double> hu = gpu.download(u), hvt = gpu.download(vt);
    // A = U S V^T. Row-major n x n VT is column-major V: V's row c holds component c of each vector.
    std::vector<double>& u_side = transpose ? d.right : d.left;  // m rows
    std::vector<double>& v_side = transpose ? d.left : d.right;  // n rows
    u_side.resize(m * n);
    for (uint64_t i = 0; i < m; ++i)
        for (uint64_t j = 0; j < n; ++j) u_side[i * n + j] = hu[i + j * m];
    v_side = hvt;  // v_side[c * n + j] = V[c, j] = VT[j, c], stored at hvt[j + c * n]
    return d;
}

}  // namespace svd::cuda
