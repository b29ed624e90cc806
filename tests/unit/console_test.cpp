// The progress line a long stage shows on a terminal: the key, the count, the detail (the
// layer at work), the elapsed time and the time left at the rate so far.
#include "util/console.hpp"

#include <catch2/catch.hpp>

using namespace shrink;

TEST_CASE("the progress line shows the count, the layer, the elapsed time and the time left", "[console]") {
    CHECK(console::progress_text("gptq4 layers: layers.3.mlp.up_proj", 12, 29, 6.2) ==
          "gptq4 layers: 41% (12/29) layers.3.mlp.up_proj, 0:06 elapsed, 0:09 left");
    // No estimate before a second has passed or before anything is done; none at the end.
    CHECK(console::progress_text("h calibration", 3, 100, 0.4) == "h calibration: 3% (3/100), 0:00 elapsed");
    CHECK(console::progress_text("h calibration", 0, 100, 5) == "h calibration: 0% (0/100), 0:05 elapsed");
    CHECK(console::progress_text("gptq4 layers", 29, 29, 75) == "gptq4 layers: 100% (29/29), 1:15 elapsed");
    // Hours once past the hour.
    CHECK(console::progress_text("ft training", 1, 4, 3725) == "ft training: 25% (1/4), 1:02:05 elapsed, 3:06:15 left");
}
