// Piece-wise decoding of one tensor (see tensor_pieces.h). test_reader compares
// decode_many on 1, 2 and 5 threads, with tensors large enough to be split, against
// decode_into for every codec.
#include "tensor_pieces.h"

#include <sys/mman.h>

#include <algorithm>

namespace seedcore {

void prefault_for_write(void* out, uint64_t bytes) {
#if defined(MADV_POPULATE_WRITE)
  // Fresh outputs (numpy arrays just allocated) are not mapped yet: writing them costs
  // one page fault per 4 KiB page, and in a VM each fault's trap costs about as much
  // as decoding the page. One madvise maps the whole range in the kernel, without the
  // traps. Only whole pages inside the range are populated (a neighbouring tensor may
  // share the first or last page); contents are unchanged. A hint only: an older
  // kernel's EINVAL (or anything else) just leaves the faults to happen on writing.
  if (bytes < kPrefaultMinBytes) return;
  const uintptr_t page = 4096;
  const uintptr_t begin = (reinterpret_cast<uintptr_t>(out) + page - 1) & ~(page - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(out) + bytes) & ~(page - 1);
  if (end > begin) (void)::madvise(reinterpret_cast<void*>(begin), size_t(end - begin), MADV_POPULATE_WRITE);
#else
  (void)out;
  (void)bytes;
#endif
}

TensorPieces::TensorPieces(const TensorSpec& spec, const uint8_t* payload, Isa isa, uint64_t piece_bytes)
    : traits_(codec_traits(spec.codec)), plan_(plan_range_decode(spec, payload, isa)) {
  blocks_per_piece_ = plan_.blocks;
  const uint64_t bytes = spec.decoded_bytes();
  if (piece_bytes == 0 || bytes < 2 * piece_bytes || plan_.blocks < 2) return;
  const uint64_t block_bytes = plan_.block_elems * dtype_itemsize(spec.decoded_dtype());
  blocks_per_piece_ = std::max<uint64_t>(1, piece_bytes / block_bytes);
  pieces_ = size_t((plan_.blocks + blocks_per_piece_ - 1) / blocks_per_piece_);
}

void TensorPieces::output_range(size_t i, uint64_t& begin, uint64_t& end) const {
  const uint64_t block_bytes = plan_.block_elems * dtype_itemsize(plan_.spec->decoded_dtype());
  begin = uint64_t(i) * blocks_per_piece_ * block_bytes;
  end = i + 1 == pieces_ ? plan_.spec->decoded_bytes() : begin + blocks_per_piece_ * block_bytes;
}

uint64_t TensorPieces::piece_bytes(size_t i) const {
  uint64_t begin = 0, end = 0;
  output_range(i, begin, end);
  return end - begin;
}

void TensorPieces::decode(size_t i, void* out) const {
  uint64_t begin = 0, end = 0;
  output_range(i, begin, end);
  prefault_for_write(static_cast<uint8_t*>(out) + begin, end - begin);
  const uint64_t first = uint64_t(i) * blocks_per_piece_;
  const uint64_t count = std::min(blocks_per_piece_, plan_.blocks - first);
  if (count == 0) return;  // an empty tensor
  traits_.decode_range(plan_, first, count, out);
}

}  // namespace seedcore
