#include "metrics/registry.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <type_traits>

#include "base/error.h"

namespace lightboat::metrics {
namespace {

bool valid_name(const std::string& s, bool allow_colon) {
  if (s.empty()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || (allow_colon && c == ':');
    const bool digit = c >= '0' && c <= '9';
    if (!alpha && !(digit && i > 0)) return false;
  }
  return true;
}

const char* type_name(MetricType t) {
  switch (t) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

// `{a="x",b="y"` without the closing brace (histogram buckets append le), or "" without labels.
std::string open_labels(const std::vector<std::string>& names, const std::vector<std::string>& values) {
  if (names.empty()) return {};
  std::string out = "{";
  for (size_t i = 0; i < names.size(); ++i) {
    if (i) out += ',';
    out += names[i];
    out += "=\"";
    out += escape_label_value(values[i]);
    out += '"';
  }
  return out;
}

std::string close_labels(const std::string& open) {
  return open.empty() ? std::string() : open + "}";
}

void header(std::string& out, const std::string& name, const std::string& help, MetricType type) {
  out += "# HELP " + name + " " + escape_help(help) + "\n";
  out += "# TYPE " + name + " " + type_name(type) + "\n";
}

}  // namespace

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  // Whole numbers (counts, bytes) as plain integers: 1500000000, not 1.5e+09.
  if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(static_cast<int64_t>(v));
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, r.ptr);
}

std::string escape_label_value(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

std::string escape_help(const std::string& v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

void Counter::inc(double by) {
  if (!(by >= 0.0)) return;  // counters never go down; NaN fails the comparison too
  std::lock_guard<std::mutex> lock(mutex_);
  value_ += by;
}

double Counter::value() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return value_;
}

void Gauge::set(double v) {
  std::lock_guard<std::mutex> lock(mutex_);
  value_ = v;
}

void Gauge::add(double by) {
  std::lock_guard<std::mutex> lock(mutex_);
  value_ += by;
}

double Gauge::value() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return value_;
}

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), buckets_(bounds_.size() + 1, 0) {}

void Histogram::observe(double v) {
  if (std::isnan(v)) return;
  // First bound >= v: "le" buckets are inclusive.
  const auto i = static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  std::lock_guard<std::mutex> lock(mutex_);
  ++buckets_[i];
  sum_ += v;
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.bounds = bounds_;
  s.counts.resize(bounds_.size());
  std::lock_guard<std::mutex> lock(mutex_);
  uint64_t running = 0;
  for (size_t i = 0; i < bounds_.size(); ++i) {
    running += buckets_[i];
    s.counts[i] = running;
  }
  s.count = running + buckets_.back();
  s.sum = sum_;
  return s;
}

template <class M>
M& Family<M>::with(const std::vector<std::string>& label_values) {
  check(label_values.size() == label_names_.size(), ErrorKind::kInvalidArgument,
        "metric " + name_ + ": " + std::to_string(label_values.size()) + " label values for " +
            std::to_string(label_names_.size()) + " labels");
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = children_.find(label_values);
  if (it == children_.end()) {
    std::unique_ptr<M> child;
    if constexpr (std::is_same_v<M, Histogram>) {
      child = std::make_unique<Histogram>(bounds_);
    } else {
      child = std::make_unique<M>();
    }
    it = children_.emplace(label_values, std::move(child)).first;
  }
  return *it->second;
}

template class Family<Counter>;
template class Family<Gauge>;
template class Family<Histogram>;

void Registry::check_new(const std::string& name, const std::vector<std::string>& label_names, bool histogram) const {
  check(valid_name(name, true), ErrorKind::kInvalidArgument, "metric name '" + name + "' is not a Prometheus name");
  for (const Entry& e : entries_) {
    const std::string& other = e.counter ? e.counter->name_ : e.gauge ? e.gauge->name_ : e.histogram->name_;
    check(other != name, ErrorKind::kInvalidArgument, "metric " + name + " is registered twice");
  }
  for (size_t i = 0; i < label_names.size(); ++i) {
    const std::string& l = label_names[i];
    check(valid_name(l, false) && l.rfind("__", 0) != 0, ErrorKind::kInvalidArgument,
          "metric " + name + ": label name '" + l + "' is not allowed");
    check(!(histogram && l == "le"), ErrorKind::kInvalidArgument,
          "metric " + name + ": 'le' is reserved in histograms");
    for (size_t j = 0; j < i; ++j) {
      check(label_names[j] != l, ErrorKind::kInvalidArgument, "metric " + name + ": label '" + l + "' appears twice");
    }
  }
}

Family<Counter>& Registry::counter(const std::string& name, const std::string& help,
                                   const std::vector<std::string>& label_names) {
  std::lock_guard<std::mutex> lock(mutex_);
  check_new(name, label_names, false);
  Entry e{.type = MetricType::kCounter};
  e.counter.reset(new Family<Counter>(name, help, label_names, {}));
  if (label_names.empty()) e.counter->with({});
  entries_.push_back(std::move(e));
  return *entries_.back().counter;
}

Family<Gauge>& Registry::gauge(const std::string& name, const std::string& help,
                               const std::vector<std::string>& label_names) {
  std::lock_guard<std::mutex> lock(mutex_);
  check_new(name, label_names, false);
  Entry e{.type = MetricType::kGauge};
  e.gauge.reset(new Family<Gauge>(name, help, label_names, {}));
  if (label_names.empty()) e.gauge->with({});
  entries_.push_back(std::move(e));
  return *entries_.back().gauge;
}

Family<Histogram>& Registry::histogram(const std::string& name, const std::string& help,
                                       const std::vector<std::string>& label_names, const std::vector<double>& bounds) {
  std::lock_guard<std::mutex> lock(mutex_);
  check_new(name, label_names, true);
  for (size_t i = 0; i < bounds.size(); ++i) {
    check(std::isfinite(bounds[i]) && (i == 0 || bounds[i] > bounds[i - 1]), ErrorKind::kInvalidArgument,
          "metric " + name + ": bucket bounds must be finite and strictly ascending");
  }
  Entry e{.type = MetricType::kHistogram};
  e.histogram.reset(new Family<Histogram>(name, help, label_names, bounds));
  if (label_names.empty()) e.histogram->with({});
  entries_.push_back(std::move(e));
  return *entries_.back().histogram;
}

std::string Registry::expose() const {
  std::lock_guard<std::mutex> lock(mutex_);
  std::string out;
  for (const Entry& e : entries_) {
    if (e.counter || e.gauge) {
      const auto emit = [&](const auto& family) {
        header(out, family.name_, family.help_, e.type);
        std::lock_guard<std::mutex> children_lock(family.mutex_);
        for (const auto& [values, child] : family.children_) {
          out += family.name_ + close_labels(open_labels(family.label_names_, values)) + " " +
                 format_value(child->value()) + "\n";
        }
      };
      if (e.counter)
        emit(*e.counter);
      else
        emit(*e.gauge);
      continue;
    }
    const Family<Histogram>& f = *e.histogram;
    header(out, f.name_, f.help_, e.type);
    std::lock_guard<std::mutex> children_lock(f.mutex_);
    for (const auto& [values, child] : f.children_) {
      const Histogram::Snapshot s = child->snapshot();
      const std::string open = open_labels(f.label_names_, values);
      const std::string le = open.empty() ? "{le=\"" : open + ",le=\"";
      for (size_t i = 0; i < s.bounds.size(); ++i) {
        out += f.name_ + "_bucket" + le + format_value(s.bounds[i]) + "\"} " + std::to_string(s.counts[i]) + "\n";
      }
      out += f.name_ + "_bucket" + le + "+Inf\"} " + std::to_string(s.count) + "\n";
      out += f.name_ + "_sum" + close_labels(open) + " " + format_value(s.sum) + "\n";
      out += f.name_ + "_count" + close_labels(open) + " " + std::to_string(s.count) + "\n";
    }
  }
  return out;
}

}  // namespace lightboat::metrics
