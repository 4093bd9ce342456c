// What the CPU's int8 dot product can do, as oneDNN sees it.
//
// Without VNNI (AVX2 here), oneDNN's u8×s8 kernels use vpmaddubsw, which adds
// two u8·s8 products into a SATURATING int16: 255·127·2 overflows and the
// sum comes back silently wrong (≈2× too small). Keeping every weight code
// within ±kSaturationSafeCode makes 2·255·|w| ≤ 32767 hold (2·255·64 =
// 32640), so the int8 path
// is exact for any u8 activation. With VNNI (vpdpbusd, int32 accumulation)
// the full s8 range is safe.
#pragma once

namespace qs {

inline constexpr int kSaturationSafeCode = 64;

bool CpuHasInt8Vnni();
// The largest |weight code| the int8 kernels may use on this CPU.
int MaxSafeWeightCode();
// oneDNN's name for the effective ISA ("avx2", "avx512_core_vnni", ...).
const char* CpuIsaName();

}  // namespace qs
