// The GPU tests' own main: where no CUDA device is visible they say why and exit 77,
// which ctest reports as skipped (SKIP_RETURN_CODE), instead of failing or passing.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include "devices/cuda_probe.hpp"

#include <cstdio>

int main(int argc, char** argv) {
    const shrink::cuda_status& cuda = shrink::probe_cuda();
    if (cuda.devices == 0) {
        std::printf("skipped: no CUDA device is visible (%s)\n", cuda.reason.c_str());
        return 77;
    }
    return Catch::Session().run(argc, argv);
}
