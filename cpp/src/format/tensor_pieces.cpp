// Piece-wise decoding of one tensor (see tensor_pieces.h). test_reader compares
// decode_many on 1, 2 and 5 threads, with tensors large enough to be split, against
// decode_into for every codec.
#include "tensor_pieces.h"

#include <sys/mman.h>

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

void prefault_for_read(const void* data, uint64_t bytes) {
#if defined(MADV_POPULATE_READ)
  if (bytes < kPrefaultMinBytes) return;
  const uintptr_t page = 4096;
  const uintptr_t begin = reinterpret_cast<uintptr_t>(data) & ~(page - 1);
  const uintptr_t end = (reinterpret_cast<uintptr_t>(data) + bytes + page - 1) & ~(page - 1);
  (void)::madvise(reinterpret_cast<void*>(begin), size_t(end - begin), MADV_POPULATE_READ);  // a hint
#else
  (void)data;
  (void)bytes;
#endif
}

TensorPieces::TensorPieces(const TensorSpec& spec, const uint8_t* payload, Isa isa, void* out, uint64_t window,
                           const std::string& where, PrngTableCache* tables)
    : traits_(codec_traits(spec.codec)), plan_(plan_range_decode(spec, payload, isa, where, tables)),
      out_(static_cast<uint8_t*>(out)) {
  plan_.stream = false;  // each window is written right after it is faulted in: cache-hot
  block_bytes_ = plan_.block_elems * dtype_itemsize(spec.decoded_dtype());
  cuts_.push_back(0);
  const uintptr_t begin = reinterpret_cast<uintptr_t>(out_);
  const uintptr_t end = begin + spec.decoded_bytes();
  if (window != 0 && plan_.blocks > 1) {
    for (uintptr_t w = (begin / window + 1) * window; w < end; w += window) {
      const uint64_t block = (w - begin + block_bytes_ - 1) / block_bytes_;  // first block starting at or after w
      if (block > cuts_.back() && block < plan_.blocks) cuts_.push_back(block);
    }
  }
  cuts_.push_back(plan_.blocks);
}

void TensorPieces::output_range(size_t i, uintptr_t& begin, uintptr_t& end) const {
  const uintptr_t base = reinterpret_cast<uintptr_t>(out_);
  begin = base + cuts_[i] * block_bytes_;
  end = i + 2 == cuts_.size() ? base + plan_.spec->decoded_bytes() : base + cuts_[i + 1] * block_bytes_;
}

void TensorPieces::decode(size_t i) const {
  const uint64_t count = cuts_[i + 1] - cuts_[i];
  if (count == 0) return;  // an empty tensor
  traits_.decode_range(plan_, cuts_[i], count, out_);
}

}  // namespace seedcore
