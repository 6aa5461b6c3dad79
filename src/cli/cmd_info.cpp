// lightboat info: what a GGUF file holds, read from its metadata and tensor directory only (no
// weights are touched, nothing is loaded for compute): architecture, parameter count, tensor
// types, shape hyper-parameters, tokenizer and chat template. --json prints one object.
#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>

#include "base/error.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/model_path.h"
#include "tokenizer/chat_template.h"

namespace lightboat::cli {
namespace {

struct InfoOptions {
  std::string path;
  bool json = false;
};

// An integer metadata value; for per-layer arrays (some files give head counts per layer) the
// largest entry. nullopt when absent or not numeric.
std::optional<int64_t> meta_int(const gguf::Reader& r, const std::string& key) {
  const gguf::Value* v = r.find(key);
  if (v == nullptr) return std::nullopt;
  if (v->is_integer()) return v->as_int(key);
  if (v->type == gguf::ValueType::kArray) {
    std::optional<int64_t> best;
    for (const gguf::Value& item : v->as_array(key).items) {
      if (item.is_integer()) best = std::max(best.value_or(item.as_int(key)), item.as_int(key));
    }
    return best;
  }
  return std::nullopt;
}

std::string human_count(uint64_t n) {
  char buf[32];
  if (n >= 1'000'000'000) {
    std::snprintf(buf, sizeof buf, "%.2f B", static_cast<double>(n) / 1e9);
  } else if (n >= 1'000'000) {
    std::snprintf(buf, sizeof buf, "%.2f M", static_cast<double>(n) / 1e6);
  } else if (n >= 1'000) {
    std::snprintf(buf, sizeof buf, "%.2f K", static_cast<double>(n) / 1e3);
  } else {
    std::snprintf(buf, sizeof buf, "%llu", static_cast<unsigned long long>(n));
  }
  return buf;
}

std::string human_bytes(uint64_t n) {
  char buf[32];
  const double d = static_cast<double>(n);
  if (n >= (1ull << 30)) {
    std::snprintf(buf, sizeof buf, "%.2f GiB", d / (1ull << 30));
  } else if (n >= (1ull << 20)) {
    std::snprintf(buf, sizeof buf, "%.2f MiB", d / (1ull << 20));
  } else if (n >= (1ull << 10)) {
    std::snprintf(buf, sizeof buf, "%.2f KiB", d / (1ull << 10));
  } else {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(n));
  }
  return buf;
}

nlohmann::json collect(const std::string& path) {
  const auto reader = gguf::Reader::open(path, LoadMode::kMmap);
  const gguf::Reader& r = *reader;
  nlohmann::json j;
  j["file"] = path;
  j["file_size"] = r.file().size();
  j["gguf_version"] = r.version();
  const std::string arch = r.try_string("general.architecture").value_or("");
  j["architecture"] = arch;
  j["name"] = r.try_string("general.name").value_or("");

  uint64_t params = 0, tensor_bytes = 0;
  std::map<std::string, std::pair<uint64_t, uint64_t>> types;  // name -> (tensors, bytes)
  for (const gguf::TensorInfo& t : r.tensors()) {
    params += t.n_elements;
    tensor_bytes += t.n_bytes;
    const auto geo = gguf::tensor_type_geometry(t.type_id);
    auto& slot = types[geo ? std::string(geo->name) : "type " + std::to_string(t.type_id)];
    ++slot.first;
    slot.second += t.n_bytes;
  }
  j["parameters"] = params;
  j["tensors"] = r.tensors().size();
  j["tensor_bytes"] = tensor_bytes;
  j["tensor_types"] = nlohmann::json::object();
  for (const auto& [name, cb] : types) j["tensor_types"][name] = {{"count", cb.first}, {"bytes", cb.second}};

  auto put = [&](const char* field, const std::string& key) {
    const std::optional<int64_t> v = arch.empty() ? std::nullopt : meta_int(r, arch + "." + key);
    j[field] = v ? nlohmann::json(*v) : nlohmann::json(nullptr);
  };
  put("context_length", "context_length");
  put("embedding_length", "embedding_length");
  put("block_count", "block_count");
  put("head_count", "attention.head_count");
  put("head_count_kv", "attention.head_count_kv");
  put("feed_forward_length", "feed_forward_length");

  // A vocabulary we cannot read is reported, not fatal: info is a diagnostic tool.
  try {
    const tokenizer::Tokenizer tok = tokenizer::Tokenizer::from_gguf(r);
    auto text = [&](int32_t id) {
      return id == tokenizer::kNoToken ? nlohmann::json(nullptr) : nlohmann::json(tok.token_text(id));
    };
    j["tokenizer"] = {{"model", tok.model_name()}, {"pre", tok.pre_name()},  {"vocab_size", tok.n_vocab()},
                      {"bos", text(tok.bos())},    {"eos", text(tok.eos())}, {"add_bos", tok.add_bos()}};
    const tokenizer::ChatTemplate chat = tokenizer::ChatTemplate::from_gguf(r, tok);
    j["chat_template"] = {{"present", !chat.source().empty()},
                          {"family", chat_family_name(chat.family())},
                          {"renders", chat.renders()},
                          {"system_role", chat.renders() && chat.supports_system_role()},
                          {"length", chat.source().size()}};
    if (!chat.warning().empty()) j["chat_template"]["warning"] = chat.warning();
  } catch (const Error& e) {
    j["tokenizer"] = {{"error", e.what()}};
    const std::string source = r.try_string("tokenizer.chat_template").value_or("");
    j["chat_template"] = {{"present", !source.empty()},
                          {"family", chat_family_name(tokenizer::detect_chat_family(source))}};
  }
  return j;
}

std::string text_of(const nlohmann::json& v) {
  if (v.is_null()) return "-";
  if (v.is_string()) return v.get<std::string>().empty() ? "-" : v.get<std::string>();
  return v.dump();
}

void print_human(const nlohmann::json& j) {
  auto line = [](const char* k, const std::string& v) { std::printf("%-16s %s\n", k, v.c_str()); };
  line("file", j["file"].get<std::string>());
  line("size", human_bytes(j["file_size"].get<uint64_t>()) + " (" + j["file_size"].dump() + " bytes)");
  line("gguf version", j["gguf_version"].dump());
  line("name", text_of(j["name"]));
  line("architecture", text_of(j["architecture"]));
  line("parameters", human_count(j["parameters"].get<uint64_t>()) + " (" + j["parameters"].dump() + ")");
  std::string types;
  for (const auto& [name, cb] : j["tensor_types"].items()) {
    if (!types.empty()) types += ", ";
    types += name + " " + cb["count"].dump();
  }
  line("tensors", j["tensors"].dump() + ": " + types + " (" + human_bytes(j["tensor_bytes"].get<uint64_t>()) + ")");
  line("context length", text_of(j["context_length"]));
  line("embedding", text_of(j["embedding_length"]));
  line("layers", text_of(j["block_count"]));
  line("heads", text_of(j["head_count"]) + " (kv " + text_of(j["head_count_kv"]) + ")");
  line("feed forward", text_of(j["feed_forward_length"]));
  const nlohmann::json& t = j["tokenizer"];
  if (t.contains("error")) {
    line("tokenizer", "cannot be read: " + t["error"].get<std::string>());
  } else {
    line("tokenizer", t["model"].get<std::string>() +
                          (t["pre"].get<std::string>().empty() ? "" : " (pre " + t["pre"].get<std::string>() + ")") +
                          ", " + t["vocab_size"].dump() + " tokens, bos " + text_of(t["bos"]) + ", eos " +
                          text_of(t["eos"]));
  }
  const nlohmann::json& c = j["chat_template"];
  std::string chat = c["present"].get<bool>() ? c["family"].get<std::string>() : "none (ChatML is used)";
  if (c.contains("renders") && c["present"].get<bool>()) {
    chat += c["renders"].get<bool>() ? (c["system_role"].get<bool>()
                                            ? ", rendered as Jinja"
                                            : ", rendered as Jinja, no system role (folded into the first user turn)")
                                     : ", built-in format (the template does not parse)";
  }
  line("chat template", chat);
}

int info(const InfoOptions& o) {
  const nlohmann::json j = collect(resolve_model_path(o.path).path);
  if (o.json) {
    std::printf("%s\n", dump_json(j).c_str());
  } else {
    print_human(j);
  }
  return 0;
}

}  // namespace

Runner add_info_command(CLI::App& app) {
  auto o = std::make_shared<InfoOptions>();
  CLI::App* cmd =
      app.add_subcommand("info", "Describe a GGUF model: architecture, size, tensor types, tokenizer, chat template");
  auto* pos = cmd->add_option("model", o->path, "GGUF model file");
  cmd->add_option("-m,--model", o->path, "GGUF model file (same as the positional argument)")->excludes(pos);
  cmd->add_flag("--json", o->json, "Print one JSON object");
  return [o] { return info(*o); };
}

}  // namespace lightboat::cli
