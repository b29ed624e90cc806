#include "data/fashion_mnist.hpp"
#include "support.hpp"
#include "util/errors.hpp"

#include <catch2/catch.hpp>

using namespace shrink;
using Catch::Matchers::Contains;

TEST_CASE("the Debian package's test split loads with its labels", "[data]") {
    const image_set s = load_fashion_mnist(fashion_mnist_default_dir, "test");
    CHECK(s.count == 10000);
    CHECK(s.features == 784);
    CHECK(s.pixels.size() == 10000u * 784u);
    std::vector<int> per_class(10);
    for (int32_t l : s.labels) per_class[size_t(l)]++;
    for (int c : per_class) CHECK(c == 1000);  // Fashion-MNIST's test split is balanced
}

TEST_CASE("broken data files are refused naming the file", "[data]") {
    test::temp_dir dir;
    CHECK_THROWS_WITH(load_fashion_mnist(dir.path().string(), "test"), Contains("Fashion-MNIST file not found"));
    test::write_text(dir / "t10k-images-idx3-ubyte", std::string("\0\0\x08\x03\0\0\0\x02\0\0\0\x1c\0\0\0\x1c", 16) + "short");
    test::write_text(dir / "t10k-labels-idx1-ubyte", std::string("\0\0\x08\x01\0\0\0\x02\x01\x02", 10));
    CHECK_THROWS_WITH(load_fashion_mnist(dir.path().string(), "test"), Contains("t10k-images-idx3-ubyte: error: holds 5 pixel bytes"));
    test::write_text(dir / "t10k-images-idx3-ubyte", "not idx at all, not idx at all");
    CHECK_THROWS_WITH(load_fashion_mnist(dir.path().string(), "test"), Contains("not an IDX image file"));
    test::write_text(dir / "t10k-images-idx3-ubyte.gz", "corrupt gzip?");
    CHECK_THROWS_AS(load_fashion_mnist(dir.path().string(), "test"), input_error);
}
