#include "runtime/runner.hpp"

#include "cuda/cuda.hpp"
#include "cpu/engine.hpp"

namespace shrink {

std::unique_ptr<runner> make_runner(const model& m, const device_choice& where) {
    if (where.cuda) return make_cuda_runner(m, where.ordinal);
    return std::make_unique<engine>(m);
}

}  // namespace shrink
