// The metrics registry and its Prometheus text exposition.
#include "metrics/registry.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <iostream>
#include <thread>

#include "base/error.h"

namespace lightboat::metrics {
namespace {

bool contains(const std::string& text, const std::string& line) {
  return text.find(line) != std::string::npos;
}

// A registry using every feature, shared by the tests and by --dump-exposition (promtool).
void fill(Registry& r) {
  auto& requests = r.counter("inference_requests_total", "Finished requests by status.", {"status"});
  requests.with({"ok"}).inc(3);
  requests.with({"error"}).inc();
  r.gauge("lightboat_requests_in_flight", "Requests being served.").with({}).set(2);
  auto& mem = r.gauge("model_memory_bytes", "Bytes held by the model.", {"model", "kind"});
  mem.with({"a \"quoted\"\nname\\", "weights"}).set(1.5e9);
  auto& lat = r.histogram("lightboat_latency_seconds", "Latency.\nSecond line \\ backslash.", {"model"},
                          {0.05, 0.1, 0.2, 0.5, 1});
  for (double v : {0.01, 0.05, 0.07, 0.3, 2.0}) lat.with({"m"}).observe(v);
  r.histogram("lightboat_empty_seconds", "No labels, no observations.", {}, {1, 2});
}

TEST(Metrics, CountersAndGaugesExposeWithLabels) {
  Registry r;
  fill(r);
  const std::string text = r.expose();
  EXPECT_TRUE(contains(text,
                       "# HELP inference_requests_total Finished requests by status.\n"
                       "# TYPE inference_requests_total counter\n"
                       "inference_requests_total{status=\"error\"} 1\n"
                       "inference_requests_total{status=\"ok\"} 3\n"))
      << text;
  EXPECT_TRUE(contains(text, "# TYPE lightboat_requests_in_flight gauge\nlightboat_requests_in_flight 2\n")) << text;
  EXPECT_TRUE(contains(text, "model_memory_bytes{model=\"a \\\"quoted\\\"\\nname\\\\\",kind=\"weights\"} 1500000000\n"))
      << text;
}

TEST(Metrics, HistogramBucketsAreCumulativeAndInclusive) {
  Registry r;
  fill(r);
  const std::string text = r.expose();
  EXPECT_TRUE(contains(text, "# HELP lightboat_latency_seconds Latency.\\nSecond line \\\\ backslash.\n")) << text;
  EXPECT_TRUE(contains(text,
                       "lightboat_latency_seconds_bucket{model=\"m\",le=\"0.05\"} 2\n"
                       "lightboat_latency_seconds_bucket{model=\"m\",le=\"0.1\"} 3\n"
                       "lightboat_latency_seconds_bucket{model=\"m\",le=\"0.2\"} 3\n"
                       "lightboat_latency_seconds_bucket{model=\"m\",le=\"0.5\"} 4\n"
                       "lightboat_latency_seconds_bucket{model=\"m\",le=\"1\"} 4\n"
                       "lightboat_latency_seconds_bucket{model=\"m\",le=\"+Inf\"} 5\n"
                       "lightboat_latency_seconds_sum{model=\"m\"} 2.43\n"
                       "lightboat_latency_seconds_count{model=\"m\"} 5\n"))
      << text;
  EXPECT_TRUE(contains(text, "lightboat_empty_seconds_bucket{le=\"+Inf\"} 0\nlightboat_empty_seconds_sum 0\n")) << text;
}

TEST(Metrics, ValuesFormat) {
  EXPECT_EQ(format_value(0), "0");
  EXPECT_EQ(format_value(42), "42");
  EXPECT_EQ(format_value(0.25), "0.25");
  EXPECT_EQ(format_value(1.0 / 0.0), "+Inf");
  EXPECT_EQ(format_value(-1.0 / 0.0), "-Inf");
  EXPECT_EQ(format_value(std::nan("")), "NaN");
}

TEST(Metrics, BadDefinitionsAreRefusedByName) {
  Registry r;
  r.counter("a_total", "x");
  EXPECT_THROW(r.counter("a_total", "again"), Error);
  EXPECT_THROW(r.gauge("1bad", "x"), Error);
  EXPECT_THROW(r.gauge("bad-name", "x"), Error);
  EXPECT_THROW(r.gauge("g", "x", {"__reserved"}), Error);
  EXPECT_THROW(r.gauge("g2", "x", {"a", "a"}), Error);
  EXPECT_THROW(r.histogram("h", "x", {"le"}, {1}), Error);
  EXPECT_THROW(r.histogram("h2", "x", {}, {2, 1}), Error);
  auto& f = r.counter("labelled_total", "x", {"status"});
  try {
    f.with({"a", "b"});
    FAIL() << "two values for one label";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("labelled_total"), std::string::npos) << e.what();
  }
}

TEST(Metrics, CountersIgnoreNegativeAndConcurrentUpdatesAddUp) {
  Registry r;
  Counter& c = r.counter("c_total", "x").with({});
  c.inc(-5);
  EXPECT_EQ(c.value(), 0);
  Histogram& h = r.histogram("h_seconds", "x", {}, {1}).with({});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        c.inc();
        h.observe(i % 2 ? 0.5 : 5.0);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.value(), 40000);
  const Histogram::Snapshot s = h.snapshot();
  EXPECT_EQ(s.count, 40000u);
  EXPECT_EQ(s.counts[0], 20000u);
}

}  // namespace
}  // namespace lightboat::metrics

// `metrics_tests --dump-exposition` prints fill()'s exposition for promtool (see CMakeLists.txt).
int main(int argc, char** argv) {
  if (argc == 2 && std::strcmp(argv[1], "--dump-exposition") == 0) {
    lightboat::metrics::Registry r;
    lightboat::metrics::fill(r);
    std::cout << r.expose();
    return 0;
  }
  testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
