#include "engine/cpu_features.h"

#include <cstdlib>
#include <cstring>

#include "oneapi/dnnl/dnnl.hpp"

namespace qs {
namespace {
constexpr unsigned kAvx512VnniBit = 0x40;  // set from avx512_core_vnni upwards
constexpr unsigned kAvx2VnniBit = 0x400;   // avx2_vnni
}  // namespace

bool CpuHasInt8Vnni() {
  // QUANTSERVE_ASSUME_NO_VNNI=1 forces the saturation-safe path (tests,
  // and machines where oneDNN's ISA is capped with ONEDNN_MAX_CPU_ISA).
  const char* force = std::getenv("QUANTSERVE_ASSUME_NO_VNNI");
  if (force != nullptr && std::strcmp(force, "1") == 0) return false;
  const unsigned isa = static_cast<unsigned>(dnnl::get_effective_cpu_isa());
  return (isa & kAvx512VnniBit) != 0 || (isa & kAvx2VnniBit) == kAvx2VnniBit;
}

int MaxSafeWeightCode() { return CpuHasInt8Vnni() ? 127 : kSaturationSafeCode; }

const char* CpuIsaName() {
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::sse41: return "sse41";
    case dnnl::cpu_isa::avx: return "avx";
    case dnnl::cpu_isa::avx2: return "avx2";
    case dnnl::cpu_isa::avx2_vnni: return "avx2_vnni";
    case dnnl::cpu_isa::avx512_core: return "avx512_core";
    case dnnl::cpu_isa::avx512_core_vnni: return "avx512_core_vnni";
    case dnnl::cpu_isa::avx512_core_bf16: return "avx512_core_bf16";
    case dnnl::cpu_isa::avx512_core_amx: return "avx512_core_amx";
    default: return "other";
  }
}

}  // namespace qs
