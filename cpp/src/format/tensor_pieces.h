// One tensor's decode cut into independent pieces of output, so that several threads
// can decode one large tensor (decode_many). Internal to the reader.
//
// A piece is a run of whole codec blocks (codec_traits.h): every output element is
// computed by exactly the kernel call, on exactly the inputs, that the whole-tensor
// decode uses, so results are bit-identical to decode_checked_payload for any cut.
// Nothing here knows a codec's layout: the codec's traits decode the ranges.
//
// Pieces are cut at fixed *address* boundaries (multiples of a window, 2 MiB in
// decode_many), not at fixed offsets inside the tensor, so that every piece lies in
// one window and decode_many can give each window (one transparent huge page of its
// output arena) to one thread, which faults it in and then writes it while the
// kernel's freshly zeroed lines are still in that core's cache.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "../codecs/codec_traits.h"
#include "seedcore/tensor_spec.h"

namespace seedcore {

// Outputs smaller than this are not worth a madvise call.
constexpr uint64_t kPrefaultMinBytes = uint64_t(64) << 10;

// Maps the whole pages of [out, out + bytes) for writing in one system call
// (MADV_POPULATE_WRITE) instead of one page fault per page; contents are unchanged.
void prefault_for_write(void* out, uint64_t bytes);

// Maps the whole pages of [data, data + bytes) of a file mapping for reading in one
// system call (MADV_POPULATE_READ) instead of one fault per 16 pages (the kernel's
// fault-around) when the CRC first reads them; contents are unchanged.
void prefault_for_read(const void* data, uint64_t bytes);

class TensorPieces {
 public:
  // The payload must already have passed its CRC and check_payload_decodable; `where`
  // names the tensor in errors found while decoding (ecq's streams). `out`
  // is where the whole tensor will be decoded; pieces end at the first block that
  // starts at or after each multiple of `window` (an absolute address) inside it. One
  // piece when window is 0. Builds what the pieces share (prng basis tables) once,
  // taking them from `tables` when given. Outputs are written with ordinary stores
  // whatever their size (no streaming, see kWindowBytes in seed_file.cpp).
  TensorPieces(const TensorSpec& spec, const uint8_t* payload, Isa isa, void* out, uint64_t window,
               const std::string& where, PrngTableCache* tables = nullptr);

  size_t count() const { return cuts_.size() - 1; }
  // Addresses [begin, end) of the output that piece i writes.
  void output_range(size_t i, uintptr_t& begin, uintptr_t& end) const;
  // Decodes piece i. Pieces write disjoint bytes; any number may run at once. Throws
  // SeedError when the piece breaks a rule that decoding checks (ecq's streams).
  void decode(size_t i) const;

 private:
  const CodecTraits& traits_;
  RangeDecodePlan plan_;
  uint8_t* out_;
  uint64_t block_bytes_ = 0;
  std::vector<uint64_t> cuts_;  // piece i is blocks [cuts_[i], cuts_[i + 1])
};

}  // namespace seedcore
