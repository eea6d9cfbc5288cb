// One tensor's decode cut into independent pieces of output, so that several threads
// can decode one large tensor (decode_many). Internal to the reader.
//
// A piece is a run of whole codec blocks (codec_traits.h): every output element is
// computed by exactly the kernel call, on exactly the inputs, that the whole-tensor
// decode uses, so results are bit-identical to decode_checked_payload for any cut.
// Nothing here knows a codec's layout: the codec's traits decode the ranges.
#pragma once
#include <cstdint>

#include "../codecs/codec_traits.h"
#include "seedcore/tensor_spec.h"

namespace seedcore {

// Outputs smaller than this are not worth a madvise call.
constexpr uint64_t kPrefaultMinBytes = uint64_t(64) << 10;

// Maps the whole pages of [out, out + bytes) for writing in one system call
// (MADV_POPULATE_WRITE) instead of one page fault per page; contents are unchanged.
void prefault_for_write(void* out, uint64_t bytes);

class TensorPieces {
 public:
  // The payload must already have passed its CRC and check_payload_decodable. Splits
  // into pieces of about `piece_bytes` of output (one piece when the tensor is smaller
  // than two of them); builds what the pieces share (prng basis tables) once.
  TensorPieces(const TensorSpec& spec, const uint8_t* payload, Isa isa, uint64_t piece_bytes);

  size_t count() const { return pieces_; }
  // Bytes [begin, end) of the output that piece i writes.
  void output_range(size_t i, uint64_t& begin, uint64_t& end) const;
  // Output bytes of piece i (for scheduling largest first).
  uint64_t piece_bytes(size_t i) const;
  // Decodes piece i into `out`, the whole tensor's output buffer (prefaulting the
  // piece's pages first). Pieces write disjoint bytes; any number may run at once.
  void decode(size_t i, void* out) const;

 private:
  const CodecTraits& traits_;
  RangeDecodePlan plan_;
  uint64_t blocks_per_piece_ = 0;
  size_t pieces_ = 1;
};

}  // namespace seedcore
