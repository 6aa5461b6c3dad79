// llama-quantize's per-tensor type choice (see quantize_recipe.h for the rules in words).
#include "cli/quantize_recipe.h"

#include <algorithm>
#include <cctype>

#include "base/error.h"

namespace lightboat::cli {
namespace {

// llama_ftype values (llama.h); general.file_type holds them.
constexpr FileType kFileTypes[] = {
    {"F32", 0, DType::kF32},      {"F16", 1, DType::kF16},      {"BF16", 32, DType::kBF16},
    {"Q8_0", 7, DType::kQ8_0},    {"Q4_0", 2, DType::kQ4_0},    {"Q4_1", 3, DType::kQ4_1},
    {"Q5_0", 8, DType::kQ5_0},    {"Q5_1", 9, DType::kQ5_1},    {"Q4_K_S", 14, DType::kQ4_K},
    {"Q4_K_M", 15, DType::kQ4_K}, {"Q5_K_S", 16, DType::kQ5_K}, {"Q5_K_M", 17, DType::kQ5_K},
    {"Q6_K", 18, DType::kQ6_K},
};
constexpr uint32_t kQ4_K_S = 14, kQ4_K_M = 15, kQ5_K_M = 17;

// Types a tensor can be written in (activation-only Q8_1/Q8_K excluded).
constexpr DType kWritableTypes[] = {DType::kF32,  DType::kF16,  DType::kBF16, DType::kQ4_0, DType::kQ4_1, DType::kQ5_0,
                                    DType::kQ5_1, DType::kQ8_0, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K};

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool contains(std::string_view s, std::string_view part) {
  return s.find(part) != std::string_view::npos;
}
bool ends_with(std::string_view s, std::string_view tail) {
  return s.size() >= tail.size() && s.substr(s.size() - tail.size()) == tail;
}

// llama.cpp's broad tensor roles (llama-quant.cpp tensor_category), by name.
enum class Role { kTokenEmbd, kAttnQ, kAttnV, kAttnK, kAttnOutput, kFfnUp, kFfnGate, kFfnDown, kOutput, kOther };

Role role_of(std::string_view name) {
  if (name == "output.weight") return Role::kOutput;
  if (name == "token_embd.weight" || name == "per_layer_token_embd.weight") return Role::kTokenEmbd;
  // Fused QKV and MLA's kv_b count as attn_v: llama.cpp tests them in the attn_v branch first, so
  // its separate QKV branch is never reached.
  if (contains(name, "attn_qkv.weight") || contains(name, "attn_kv_b.weight") || contains(name, "attn_v.weight")) {
    return Role::kAttnV;
  }
  if (contains(name, "attn_k.weight")) return Role::kAttnK;
  if (contains(name, "attn_q.weight")) return Role::kAttnQ;
  if (contains(name, "attn_output.weight")) return Role::kAttnOutput;
  if (contains(name, "ffn_up")) return Role::kFfnUp;
  if (contains(name, "ffn_gate")) return Role::kFfnGate;
  if (contains(name, "ffn_down")) return Role::kFfnDown;
  return Role::kOther;
}

// ggml_n_dims: trailing dimensions of 1 do not count.
int n_dims(const std::vector<uint64_t>& ne) {
  int n = 1;
  for (size_t i = 1; i < ne.size(); ++i) {
    if (ne[i] > 1) n = static_cast<int>(i) + 1;
  }
  return n;
}

int64_t block_of(DType t) {
  return tensor::dtype_traits(t).block_elems;
}

// llama.cpp's choice of the layers whose attn_v / ffn_down get more bits in the _M mixtures: the
// first and last eighth of the layers and every third layer in between.
bool use_more_bits(int64_t i_layer, int64_t n_layer) {
  return i_layer < n_layer / 8 || i_layer >= 7 * n_layer / 8 || (i_layer - n_layer / 8) % 3 == 2;
}

// Counters of the mixture rules, advanced as tensors are visited in llama_tensor_order.
struct MixState {
  int64_t n_attn_v = 0;
  int64_t i_attn_v = 0;
  int64_t i_ffn_down = 0;
  bool tied = true;  // no output.weight: token_embd is also the output matrix
};

// The layer index for ffn_down rules: the running count, or for MoE models the number in the
// name, because expert tensors are not one per layer in order.
int64_t layer_of(const ModelFacts& m, int64_t counter, const std::string& name) {
  if (m.n_expert <= 1) return counter;
  int64_t layer = -1;
  if (name.rfind("blk.", 0) == 0) {
    const std::string digits = name.substr(4, name.find('.', 4) - 4);
    if (!digits.empty() && std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
      layer = std::stoll(digits);
  }
  check(layer >= 0 && layer < m.n_layer, ErrorKind::kFormat,
        "cannot tell the layer of tensor '" + name + "' (block_count " + std::to_string(m.n_layer) + ")");
  return layer;
}

// llama_tensor_get_type_impl for the file types Lightboat writes.
DType mixture_type(const ModelFacts& m, MixState& s, const RecipeOptions& o, const TensorDesc& t, DType type) {
  const uint32_t ft = o.file_type.id;
  const bool falcon = m.arch == "falcon";
  const Role role = role_of(t.name);
  if (role == Role::kOutput || (s.tied && role == Role::kTokenEmbd)) {
    if (o.output_type) return *o.output_type;
    if (falcon || static_cast<int64_t>(t.ne[0]) % block_of(type) != 0) return DType::kQ8_0;
    return type == DType::kQ8_0 ? type : DType::kQ6_K;
  }
  if (role == Role::kTokenEmbd) return o.token_embd_type.value_or(type);
  if (role == Role::kAttnV) {
    if ((ft == kQ4_K_M || ft == kQ5_K_M) && use_more_bits(s.i_attn_v, s.n_attn_v)) {
      type = DType::kQ6_K;
    } else if (ft == kQ4_K_S && s.i_attn_v < 4) {
      type = DType::kQ5_K;
    }
    // Llama 70B: 8 query heads share each attn_v head, so more bits there cost little.
    const bool is_70b = m.arch == "llama" && m.n_layer == 80 && m.n_head != m.n_head_kv;
    if (is_70b && type == DType::kQ4_K) type = DType::kQ5_K;
    if (m.n_expert == 8) type = DType::kQ8_0;
    ++s.i_attn_v;
    return type;
  }
  if (role == Role::kAttnK) return m.n_expert == 8 ? DType::kQ8_0 : type;
  if (role == Role::kFfnDown) {
    const int64_t il = layer_of(m, s.i_ffn_down, t.name);
    const int64_t nl = m.n_layer;
    if (ft == kQ4_K_M) {
      if (falcon) {
        type = il < nl / 16 ? DType::kQ6_K : use_more_bits(il, nl) ? DType::kQ5_K : DType::kQ4_K;
      } else if (use_more_bits(il, nl)) {
        type = DType::kQ6_K;
      }
    } else if (ft == kQ5_K_M && use_more_bits(il, nl)) {
      type = DType::kQ6_K;
    } else if (ft == kQ4_K_S && !falcon && il < nl / 8) {
      type = DType::kQ5_K;
    }
    ++s.i_ffn_down;
    return type;
  }
  if (role == Role::kAttnOutput && !falcon && m.n_expert == 8 && (ft == kQ4_K_S || ft == kQ4_K_M)) {
    return DType::kQ5_K;
  }
  return type;
}

// "blk.3.ffn_down.weight" -> "ffn_down": a --tensor-type pattern for that role in every layer.
std::string role_pattern(std::string_view name) {
  if (name.rfind("blk.", 0) == 0 && name.find('.', 4) != std::string_view::npos)
    name = name.substr(name.find('.', 4) + 1);
  if (ends_with(name, ".weight")) name = name.substr(0, name.size() - 7);
  return std::string(name);
}

// Rule 4: a type whose block does not divide the row length.
DType fallback_type(const TensorDesc& t, DType type, TensorChoice& choice) {
  const int64_t ncols = static_cast<int64_t>(t.ne[0]);
  if (ncols % block_of(type) == 0) return type;
  DType to;
  switch (type) {
    case DType::kQ4_K:
      to = DType::kQ5_0;
      break;
    case DType::kQ5_K:
      to = DType::kQ5_1;
      break;
    case DType::kQ6_K:
      to = DType::kQ8_0;
      break;
    default:
      throw Error(ErrorKind::kInvalidArgument,
                  "tensor '" + t.name + "' has rows of " + std::to_string(ncols) + " values, not a multiple of " +
                      std::to_string(block_of(type)) + " as " + std::string(tensor::dtype_name(type)) +
                      " needs, and llama.cpp defines no fallback for it (choose its type with --tensor-type, "
                      "e.g. --tensor-type " +
                      role_pattern(t.name) + "=f16)");
  }
  if (ncols % block_of(to) != 0) to = DType::kF16;
  choice.fallback = true;
  choice.note = std::string(tensor::dtype_name(type)) + " -> " + std::string(tensor::dtype_name(to)) + " for rows of " +
                std::to_string(ncols);
  return to;
}

}  // namespace

std::optional<FileType> find_file_type(std::string_view name) {
  std::string n = upper(name);
  if (n == "Q4_K") n = "Q4_K_M";
  if (n == "Q5_K") n = "Q5_K_M";
  for (const FileType& f : kFileTypes) {
    if (f.name == n) return f;
  }
  return std::nullopt;
}

std::string file_type_names() {
  std::string out;
  for (const FileType& f : kFileTypes) out += (out.empty() ? "" : ", ") + std::string(f.name);
  return out + " (Q4_K = Q4_K_M, Q5_K = Q5_K_M)";
}

std::optional<DType> find_tensor_type(std::string_view name) {
  const std::string n = upper(name);
  for (DType t : kWritableTypes) {
    if (tensor::dtype_name(t) == n) return t;
  }
  return std::nullopt;
}

TypeOverride parse_type_override(std::string_view text) {
  const size_t eq = text.rfind('=');
  check(eq != std::string_view::npos && eq > 0 && eq + 1 < text.size(), ErrorKind::kInvalidArgument,
        "--tensor-type '" + std::string(text) + "': expected NAME=TYPE, e.g. ffn_down=f16");
  TypeOverride o;
  o.pattern = std::string(text.substr(0, eq));
  const std::optional<DType> type = find_tensor_type(text.substr(eq + 1));
  check(type.has_value(), ErrorKind::kInvalidArgument,
        "--tensor-type '" + std::string(text) + "': unknown tensor type '" + std::string(text.substr(eq + 1)) + "'");
  o.type = *type;
  try {
    o.regex = std::regex(o.pattern);
  } catch (const std::regex_error& e) {
    throw Error(ErrorKind::kInvalidArgument, "--tensor-type '" + std::string(text) + "': bad pattern: " + e.what());
  }
  return o;
}

bool llama_tensor_order(const std::string& a, const std::string& b) {
  // The number after "blk." as sscanf("%d") reads it; -1 outside blocks.
  auto layer = [](const std::string& s) -> int64_t {
    if (s.rfind("blk.", 0) != 0) return -1;
    size_t i = 4;
    const bool neg = i < s.size() && s[i] == '-';
    if (neg || (i < s.size() && s[i] == '+')) ++i;
    if (i >= s.size() || !std::isdigit(static_cast<unsigned char>(s[i]))) return -1;
    int64_t v = 0;
    for (; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])) && v < (int64_t{1} << 40); ++i) {
      v = v * 10 + (s[i] - '0');
    }
    return neg ? -v : v;
  };
  const int64_t la = layer(a), lb = layer(b);
  return la != lb ? la < lb : a < b;
}

bool tensor_is_quantizable(const TensorDesc& t) {
  if (n_dims(t.ne) < 2) return false;
  const std::string_view name = t.name;
  if (!ends_with(name, "weight") || contains(name, "_norm.weight")) return false;
  // Small or special tensors llama.cpp keeps as they are: MoE routers, Gemma 3n's altup/laurel
  // and projections, positional and token-type embeddings, conv and RWKV mixing weights, T5's
  // relative position bias, vision/audio encoders' embeddings.
  static constexpr std::string_view kKept[] = {"ffn_gate_inp.weight",
                                               "ffn_gate_tid2eid.weight",
                                               "altup",
                                               "laurel",
                                               "per_layer_model_proj",
                                               "ssm_conv1d",
                                               "shortconv.conv.weight",
                                               "indexer.k_proj.weight",
                                               "indexer.q_proj.weight",
                                               "time_mix_first.weight",
                                               "time_mix_w0.weight",
                                               "time_mix_w1.weight",
                                               "time_mix_w2.weight",
                                               "time_mix_v0.weight",
                                               "time_mix_v1.weight",
                                               "time_mix_v2.weight",
                                               "time_mix_a0.weight",
                                               "time_mix_a1.weight",
                                               "time_mix_a2.weight",
                                               "time_mix_g1.weight",
                                               "time_mix_g2.weight",
                                               "time_mix_decay_w1.weight",
                                               "time_mix_decay_w2.weight",
                                               "time_mix_lerp_fused.weight",
                                               "attn_rel_b.weight",
                                               ".position_embd",
                                               "sam.pos_embd",
                                               "sam.neck.",
                                               "sam.net_",
                                               ".rel_pos",
                                               ".patch_embd",
                                               ".patch_merger",
                                               "a.rvq.codebook",
                                               "mm.a.code_embd"};
  for (std::string_view k : kKept) {
    if (contains(name, k)) return false;
  }
  return name != "position_embd.weight" && name != "token_types.weight";
}

std::vector<TensorChoice> choose_tensor_types(const ModelFacts& model, std::span<const TensorDesc> tensors,
                                              const RecipeOptions& options) {
  MixState state;
  for (const TensorDesc& t : tensors) {
    const Role r = role_of(t.name);
    if (r == Role::kAttnV) ++state.n_attn_v;
    if (r == Role::kOutput) state.tied = false;
  }
  const DType base = options.file_type.base;
  const bool base_quantized = tensor::dtype_traits(base).is_quantized;
  std::vector<TensorChoice> out;
  out.reserve(tensors.size());
  for (const TensorDesc& t : tensors) {
    TensorChoice choice;
    choice.type_id = t.type_id;
    if (!tensor_is_quantizable(t)) {
      out.push_back(std::move(choice));
      continue;
    }
    const Role role = role_of(t.name);
    DType type = base;
    if (options.token_embd_type && role == Role::kTokenEmbd) {
      type = *options.token_embd_type;
    } else if (options.output_type && role == Role::kOutput) {
      type = *options.output_type;
    } else if (base_quantized) {
      bool manual = false;
      for (const TypeOverride& o : options.overrides) {
        if (std::regex_search(t.name, o.regex)) {
          type = o.type;
          manual = true;
          break;
        }
      }
      if (!manual && !options.pure) type = mixture_type(model, state, options, t, type);
      type = fallback_type(t, type, choice);
    }
    choice.type_id = static_cast<uint32_t>(type);
    out.push_back(std::move(choice));
  }
  return out;
}

}  // namespace lightboat::cli
