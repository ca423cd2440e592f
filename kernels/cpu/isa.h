// Which vector instruction set the CPU kernels of our own (the packed micro-kernels of the implicit-GEMM
// convolution) run with. The project is compiled for baseline x86-64; only the micro-kernel files are
// compiled for AVX2+FMA or AVX-512, and they are called only where CPUID says the CPU (and the OS, for the
// wider registers' state) supports them. The choice is a value passed down, not a global switch, so tests
// run every path the machine has side by side in one process.
#pragma once

#include <string>
#include <vector>

namespace cudagan::cpu {

enum class Isa { generic, avx2, avx512 };

const char* isa_name(Isa isa);     // "generic", "avx2" (with FMA), "avx512" (AVX-512F with FMA)
bool isa_supported(Isa isa);       // generic always; the others per CPUID
Isa best_isa();                    // the widest supported, detected once
std::vector<Isa> supported_isas(); // generic first
// The kernel set chosen for this CPU, for the logs: e.g. "avx512 (12x32 micro-kernel)".
std::string describe_cpu_kernels();

}  // namespace cudagan::cpu
