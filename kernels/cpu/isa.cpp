// CPUID-based choice of the micro-kernel instruction set (isa.h). __builtin_cpu_supports reads CPUID once
// at startup and, for AVX and AVX-512, also checks through XGETBV that the OS saves those registers.
#include "cpu/isa.h"

#include "cpu/microkernel.h"

namespace cudagan::cpu {

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::avx512: return "avx512";
    case Isa::avx2: return "avx2";
    case Isa::generic: break;
  }
  return "generic";
}

bool isa_supported(Isa isa) {
  switch (isa) {
    case Isa::avx512: return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
    case Isa::avx2: return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case Isa::generic: break;
  }
  return true;
}

Isa best_isa() {
  static const Isa best = isa_supported(Isa::avx512) ? Isa::avx512
                          : isa_supported(Isa::avx2) ? Isa::avx2
                                                     : Isa::generic;
  return best;
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::generic, Isa::avx2, Isa::avx512})
    if (isa_supported(isa)) out.push_back(isa);
  return out;
}

std::string describe_cpu_kernels() {
  const MicroKernel k = microkernel(best_isa());
  return std::string(isa_name(best_isa())) + " (" + std::to_string(k.mr) + "x" + std::to_string(k.nr) +
         " micro-kernel)";
}

}  // namespace cudagan::cpu
