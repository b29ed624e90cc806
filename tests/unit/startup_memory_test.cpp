// What a command costs before it reads anything (issue 16): the CUDA build took about
// 270 MB of resident memory and 0.4 s for every command, even to refuse a 3-byte file,
// because cuBLAS, cuBLASLt and cuSOLVER were linked into the host and a plugin, so the
// loader mapped and relocated them in every process. They now open on first use.
#include "model/safetensors.hpp"
#include "support.hpp"

#include <shrink/cuda_library.hpp>

#ifdef SHRINK_HAVE_CUDA
#include "cuda/math_libraries.hpp"
#endif

#include <catch2/catch.hpp>

#include <fstream>
#include <string>

using namespace shrink;
namespace fs = std::filesystem;

namespace {

// Measured on the plain build: 13 MB for verify, 17 MB for plan (which loads every
// plugin). AddressSanitizer's shadow memory and quarantine add about 60 MB.
#if defined(__SANITIZE_ADDRESS__)
constexpr uint64_t startup_limit_kb = 160 * 1024;
#else
constexpr uint64_t startup_limit_kb = 48 * 1024;
#endif

}  // namespace

TEST_CASE("a command that uses no GPU starts small, CUDA build or not", "[cli][memory]") {
    test::temp_dir dir;
    // A child's peak includes this process's when this process is large: exec records the
    // peak of the memory it replaces, which a spawned child shares until then. ctest runs
    // each case in a process of its own, small enough; a run of many cases in one process
    // may not be, and then says so instead of measuring.
    uint64_t own = 0;
    test::shrink_cli_peak("--help", own);
    if (own > startup_limit_kb / 2) {
        WARN("this test process is too large (" << own / 1024 << " MiB) to measure a child's peak; run the case alone");
        return;
    }
    SECTION("refusing a 3-byte model file") {
        std::ofstream(dir / "tiny.safetensors") << "abc";
        uint64_t peak = 0;
        const auto r = test::shrink_cli_peak("verify " + (dir / "tiny.safetensors").string(), peak);
        INFO(r.output);
        CHECK(r.code == 1);
        CHECK(peak < startup_limit_kb);
    }
    SECTION("planning a recipe, which loads every plugin") {
        // A small model of its own: the unit tests do not wait for the reference model.
        save_model(test::tiny_model(), dir / "m.safetensors");
        test::write_text(dir / "r.yaml",
                         "version: 1\nname: t\nmodel: m.safetensors\nstages:\n  - { id: prune, use: pruner.magnitude }\n"
                         "  - { id: svd, use: factorizer.svd }\n  - { id: int8, use: quantizer.rtn }\n");
        uint64_t peak = 0;
        const auto r = test::shrink_cli_peak("plan " + (dir / "r.yaml").string(), peak);
        INFO(r.output);
        CHECK(r.code == 0);
        CHECK(peak < startup_limit_kb);
    }
}

TEST_CASE("a CUDA library that is not there is named when first used", "[sdk][cuda]") {
    try {
        shrink::cuda_library lib("shrink_no_such_library", 7);
        FAIL("opened a library that does not exist");
    } catch (const std::runtime_error& e) {
        CHECK(std::string(e.what()).find("cannot open libshrink_no_such_library.so.7") != std::string::npos);
    }
}

#ifdef SHRINK_HAVE_CUDA
TEST_CASE("cuBLAS and cuSOLVER resolve every call the host makes, without a GPU", "[cuda]") {
    // Opening the libraries and resolving symbols needs no device, so CI checks what a GPU
    // machine would otherwise find out at its first product.
    const auto& blas = shrink::gpu::cublas();
    CHECK(blas.create != nullptr);
    CHECK(blas.sgemm != nullptr);
    CHECK(blas.sgemm_strided_batched != nullptr);
    CHECK(std::string(blas.status_name(CUBLAS_STATUS_NOT_INITIALIZED)) == "CUBLAS_STATUS_NOT_INITIALIZED");
    const auto& solver = shrink::gpu::cusolver();
    CHECK(solver.create != nullptr);
    CHECK(solver.set_stream != nullptr);
}
#endif
