// The CUDA device in a build without the CUDA toolkit: planning already refuses cuda
// (probe_cuda says why), so these only answer a caller that skipped the plan.
#include "cuda/cuda.hpp"

#include <stdexcept>

namespace shrink {

namespace {
[[noreturn]] void absent() { throw std::runtime_error("this shrink was built without the CUDA toolkit"); }
}  // namespace

std::unique_ptr<cuda_stage_device> open_cuda_stage_device(int) { absent(); }
std::unique_ptr<runner> make_cuda_runner(const model&, int) { absent(); }

}  // namespace shrink
