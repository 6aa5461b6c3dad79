#include "kernels/attention.h"

#include <string>

#include "base/error.h"
#include "kernels/dispatch.h"
#include "kernels/isa_tables.h"

namespace lightboat::kernels {

AttentionFn attention_fn(const KernelTable& table, tensor::DType kv_type) {
  const size_t slot = dtype_slot(kv_type);
  if (kv_type != DType::kF32 && kv_type != DType::kF16) {
    throw Error(ErrorKind::kUnsupported, "attention: no kernel for a KV cache of " +
                                             std::string(tensor::dtype_name(kv_type)) + " (F32 and F16 are supported)");
  }
  if (table.attention[slot] != nullptr) return table.attention[slot];
  return detail::scalar_table().attention[slot];
}

}  // namespace lightboat::kernels
