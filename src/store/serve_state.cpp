#include "store/serve_state.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include <nlohmann/json.hpp>

#include "store/fs.h"

namespace lightboat::store {
namespace {

std::string run_dir(const std::string& root) {
  return root + "/run";
}

std::string record_path(const std::string& root, int64_t pid) {
  return run_dir(root) + "/serve-" + std::to_string(pid) + ".json";
}

// Field 22 of /proc/<pid>/stat (clock ticks since boot at the process start); nullopt when the
// process does not exist, has exited (a zombie nobody reaped yet: state Z or X), or /proc
// cannot tell. The command name (field 2) is in parentheses and may hold spaces and ')', so
// fields are counted after the last ')'.
std::optional<uint64_t> start_time(int64_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  if (!in) return std::nullopt;
  std::stringstream buf;
  buf << in.rdbuf();
  const std::string stat = buf.str();
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream rest(stat.substr(close + 1));
  std::string field;
  for (int i = 3; i <= 22; ++i) {
    if (!(rest >> field)) return std::nullopt;
    if (i == 3 && (field == "Z" || field == "X")) return std::nullopt;
  }
  try {
    return std::stoull(field);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

bool have_proc() {
  std::error_code ec;
  return std::filesystem::exists("/proc/self/stat", ec);
}

// Whether the process that wrote a record (pid, start time) still runs.
bool alive(int64_t pid, uint64_t started) {
  if (pid <= 0) return false;
  if (have_proc()) {
    const std::optional<uint64_t> now = start_time(pid);
    return now && (started == 0 || *now == started);
  }
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;  // no /proc: the pid alone
}

}  // namespace

void write_serve_record(const std::string& root, const std::vector<ServedModel>& models) {
  const int64_t pid = ::getpid();
  nlohmann::json list = nlohmann::json::array();
  for (const ServedModel& m : models) list.push_back({{"name", m.name}, {"version", m.version}});
  const nlohmann::json j = {{"pid", pid}, {"start_time", start_time(pid).value_or(0)}, {"models", list}};
  make_dirs(run_dir(root));
  atomic_write_file(record_path(root, pid), j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
}

void remove_serve_record(const std::string& root) {
  std::error_code ec;
  std::filesystem::remove(record_path(root, ::getpid()), ec);
}

std::vector<ServeRecord> live_serve_records(const std::string& root) {
  std::vector<ServeRecord> out;
  std::error_code ec;
  std::filesystem::directory_iterator it(run_dir(root), ec);
  if (ec) return out;
  for (const auto& entry : it) {
    const std::string file = entry.path().filename().string();
    if (!file.starts_with("serve-") || !file.ends_with(".json")) continue;  // temp files included
    std::string text;
    try {
      text = read_small_file(entry.path().string());
    } catch (const std::exception&) {
      continue;  // removed meanwhile (its server stopped)
    }
    const nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
    ServeRecord r;
    uint64_t started = 0;
    try {
      if (!j.is_object() || !j.contains("pid") || !j["pid"].is_number_integer()) continue;
      r.pid = j["pid"].get<int64_t>();
      started = j.value("start_time", uint64_t{0});
      if (j.contains("models") && j["models"].is_array()) {
        for (const auto& m : j["models"]) {
          if (m.is_object()) r.models.push_back({m.value("name", std::string()), m.value("version", std::string())});
        }
      }
    } catch (const nlohmann::json::exception&) {
      continue;  // a field of the wrong type: not a record of ours
    }
    if (!alive(r.pid, started)) {
      std::filesystem::remove(entry.path(), ec);  // a server that died without cleaning up
      continue;
    }
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace lightboat::store
