// The micro-kernel table (microkernel.h).
#include "cpu/microkernel.h"

#include <stdexcept>
#include <string>

#include "cudagan/core/error.h"

namespace cudagan::cpu {

MicroKernel microkernel(Isa isa) {
  if (!isa_supported(isa))
    throw InvalidArgument(std::string("cpu::microkernel: this CPU does not support ") + isa_name(isa));
  switch (isa) {
    case Isa::avx512: return {12, 32, detail::microkernel_avx512_12x32, detail::microkernel_avx512_rows};
    case Isa::avx2: return {6, 16, detail::microkernel_avx2_6x16, detail::microkernel_avx2_rows};
    case Isa::generic: break;
  }
  return {4, 16, detail::microkernel_generic_4x16, detail::microkernel_generic_rows};
}

}  // namespace cudagan::cpu
