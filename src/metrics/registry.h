// Counters, gauges and histograms with labels, and their Prometheus text exposition (format
// 0.0.4, what `promtool check metrics` reads). No packaged client library exists on the target
// distribution, and the format is small: this is all of it that Lightboat needs.
//
// Ownership: a Registry owns its families, a family owns its children (one per distinct tuple of
// label values). References returned by Registry::counter()/gauge()/histogram() and by
// Family::with() stay valid for the registry's lifetime, so hot paths look a child up once and
// keep the reference. There are no globals: whoever owns the registry (the server) passes it on.
//
// Threading: every operation is thread-safe. Updates of one child take a short mutex (a few
// nanoseconds uncontended), which keeps a histogram's buckets, sum and count consistent with
// each other in every exposition.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace lightboat::metrics {

// A monotonically increasing value (requests served, tokens generated).
class Counter {
 public:
  void inc(double by = 1.0);  // by >= 0; a negative or NaN increment is ignored
  double value() const;

 private:
  mutable std::mutex mutex_;
  double value_ = 0.0;
};

// A value that goes up and down (requests in flight, bytes in use).
class Gauge {
 public:
  void set(double v);
  void add(double by);
  double value() const;

 private:
  mutable std::mutex mutex_;
  double value_ = 0.0;
};

// Observations counted into buckets with inclusive upper bounds (Prometheus "le"), plus their
// sum and count. The +Inf bucket is implicit.
class Histogram {
 public:
  struct Snapshot {
    std::vector<double> bounds;    // ascending upper bounds, without +Inf
    std::vector<uint64_t> counts;  // cumulative: counts[i] = observations <= bounds[i]
    uint64_t count = 0;            // all observations (the +Inf bucket)
    double sum = 0.0;
  };

  explicit Histogram(std::vector<double> bounds);  // validated by the family that makes it
  void observe(double v);                          // NaN is ignored
  Snapshot snapshot() const;

 private:
  std::vector<double> bounds_;
  mutable std::mutex mutex_;
  std::vector<uint64_t> buckets_;  // [bounds.size() + 1], not cumulative; the last is > every bound
  double sum_ = 0.0;
};

enum class MetricType { kCounter, kGauge, kHistogram };

// The children of one metric name, one per tuple of label values.
template <class M>
class Family {
 public:
  // The child for these label values (in the order of the family's label names), created on
  // first use. Throws Error(kInvalidArgument) when the number of values is wrong.
  M& with(const std::vector<std::string>& label_values);

 private:
  friend class Registry;
  Family(std::string name, std::string help, std::vector<std::string> label_names, std::vector<double> bounds)
      : name_(std::move(name)),
        help_(std::move(help)),
        label_names_(std::move(label_names)),
        bounds_(std::move(bounds)) {}

  std::string name_, help_;
  std::vector<std::string> label_names_;
  std::vector<double> bounds_;  // histograms only
  mutable std::mutex mutex_;
  std::map<std::vector<std::string>, std::unique_ptr<M>> children_;  // sorted: a stable exposition
};

class Registry {
 public:
  // Register a family. Names follow Prometheus' rules ([a-zA-Z_:][a-zA-Z0-9_:]*), label names
  // theirs ([a-zA-Z_][a-zA-Z0-9_]*, not starting with "__"; "le" is reserved in histograms),
  // bounds are finite and strictly ascending. A name registered twice, or any rule broken,
  // throws Error(kInvalidArgument) naming it. A family without labels exposes its one child at
  // 0 from the start.
  Family<Counter>& counter(const std::string& name, const std::string& help,
                           const std::vector<std::string>& label_names = {});
  Family<Gauge>& gauge(const std::string& name, const std::string& help,
                       const std::vector<std::string>& label_names = {});
  Family<Histogram>& histogram(const std::string& name, const std::string& help,
                               const std::vector<std::string>& label_names, const std::vector<double>& bounds);

  // Every family in registration order, as Prometheus text exposition format 0.0.4
  // (Content-Type: text/plain; version=0.0.4).
  std::string expose() const;

 private:
  struct Entry {
    MetricType type;
    std::unique_ptr<Family<Counter>> counter;
    std::unique_ptr<Family<Gauge>> gauge;
    std::unique_ptr<Family<Histogram>> histogram;
  };
  void check_new(const std::string& name, const std::vector<std::string>& label_names, bool histogram) const;

  mutable std::mutex mutex_;
  std::vector<Entry> entries_;
};

// Text-format helpers, exposed for tests.
std::string format_value(double v);                    // shortest round-trip form; +Inf, -Inf, NaN
std::string escape_label_value(const std::string& v);  // \ " and newline escaped
std::string escape_help(const std::string& v);         // \ and newline escaped

}  // namespace lightboat::metrics
