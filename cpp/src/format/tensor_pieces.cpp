// Piece-wise decoding of one tensor (see tensor_pieces.h).
//
// This mirrors the payload layouts the codec drivers in cpp/src/codecs/ use (q8/q4:
// all scales, then the quants; prng: seeds, exponents, mantissas; format.md 3.2-3.4)
// and calls the same kernels on the same block ranges. test_reader compares
// decode_many on 1, 2 and 5 threads, with tensors large enough to be split, against
// decode_into for every codec.
#include "tensor_pieces.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "../codecs/codec_traits.h"  // kStreamingMinBytes

namespace seedcore {

struct TensorPieces::Shared {
  const DecodeKernels* kernels = nullptr;
  PrngPayloadView prng;
  PrngBasisTables tables;
  const PrngBasisTables* tables_ptr = nullptr;
};

namespace {

// Runs produce(first, count, dst) over units [first, first + count), each unit_floats
// floats. With `stream`, output goes through an L1-sized scratch and the ISA's
// non-temporal copy, as produce_float_items does for large outputs (same values,
// fewer bytes moved: no read-for-ownership of the destination lines).
template <class Produce>
void produce_units(uint64_t first, uint64_t count, size_t unit_floats, float* out, const DecodeKernels& k,
                   bool stream, Produce produce) {
  if (count == 0) return;
  if (!stream) {
    produce(first, count, out + first * unit_floats);
    return;
  }
  const size_t chunk = unit_floats >= 4096 ? 1 : 4096 / unit_floats;
  float scratch[4096 + 64];
  for (uint64_t u = first; u < first + count; u += chunk) {
    const uint64_t c = std::min<uint64_t>(chunk, first + count - u);
    produce(u, c, scratch);
    k.stream_copy_f32(out + u * unit_floats, scratch, size_t(c * unit_floats));
  }
}

}  // namespace

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
    : spec_(spec), payload_(payload), isa_(isa), shared_(new Shared) {
  const uint64_t bytes = spec.decoded_bytes();
  bool splittable = false;
  switch (spec.codec) {
    case Codec::q8:
    case Codec::q4:
      units_ = spec.n / 32;
      unit_elems_ = 32;
      splittable = true;
      break;
    case Codec::prng:
      units_ = spec.n / spec.prng.C;
      unit_elems_ = spec.prng.C;
      splittable = true;
      break;
    case Codec::raw:
      units_ = spec.n;
      unit_elems_ = 1;
      splittable = true;
      break;
    case Codec::stats:  // the column gaussians are shared by all rows: keep whole
      break;
  }
  if (!splittable || piece_bytes == 0 || bytes < 2 * piece_bytes || units_ < 2) return;
  const uint64_t unit_bytes = unit_elems_ * dtype_itemsize(spec.decoded_dtype());
  units_per_piece_ = std::max<uint64_t>(1, piece_bytes / unit_bytes);
  pieces_ = size_t((units_ + units_per_piece_ - 1) / units_per_piece_);
  split_ = pieces_ > 1;
  if (!split_) return;
  const DecodeKernels& k = decode_kernels(isa);
  shared_->kernels = &k;
  stream_ = is_float_dtype(spec.dtype) && k.isa != Isa::scalar && bytes >= kStreamingMinBytes;
  if (spec.codec == Codec::prng) {
    const PrngParams& p = spec.prng;
    const uint64_t nb = (spec.n + p.C - 1) / p.C;
    PrngPayloadView& v = shared_->prng;
    v.nb = nb;
    v.params = p;
    v.seeds = payload;
    v.exponents = payload + (nb * p.K + 7) / 8;
    v.mantissas = v.exponents + (nb + 1) / 2;
    // Same rule as the codec: tables pay off once there are more blocks than entries.
    if (k.prng_uses_tables && nb >= 256u + (1u << (p.K - 8))) {
      shared_->tables = build_prng_basis_tables(p, k.prng_layout);
      shared_->tables_ptr = &shared_->tables;
    }
  }
}

TensorPieces::~TensorPieces() = default;

uint64_t TensorPieces::piece_bytes(size_t i) const {
  if (!split_) return spec_.decoded_bytes();
  const uint64_t first = uint64_t(i) * units_per_piece_;
  const uint64_t count = std::min(units_per_piece_, units_ - first);
  return count * unit_elems_ * dtype_itemsize(spec_.decoded_dtype());
}

void TensorPieces::output_range(size_t i, uint64_t& begin, uint64_t& end) const {
  if (!split_) {
    begin = 0;
    end = spec_.decoded_bytes();
    return;
  }
  const uint64_t unit_bytes = unit_elems_ * dtype_itemsize(spec_.decoded_dtype());
  begin = uint64_t(i) * units_per_piece_ * unit_bytes;
  end = i + 1 == pieces_ ? spec_.decoded_bytes() : begin + units_per_piece_ * unit_bytes;
}

void TensorPieces::decode(size_t i, void* out) const {
  uint64_t begin = 0, end = 0;
  output_range(i, begin, end);
  prefault_for_write(static_cast<uint8_t*>(out) + begin, end - begin);
  if (!split_) {
    decode_checked_payload(spec_, payload_, out, isa_);
    return;
  }
  const DecodeKernels& k = *shared_->kernels;
  const uint64_t first = uint64_t(i) * units_per_piece_;
  const uint64_t count = std::min(units_per_piece_, units_ - first);
  const bool last = first + count == units_;
  float* dst = static_cast<float*>(out);
  switch (spec_.codec) {
    case Codec::q8:
    case Codec::q4: {
      const bool q8 = spec_.codec == Codec::q8;
      const auto kernel = q8 ? k.dequantize_q8_blocks : k.dequantize_q4_blocks;
      const size_t block_bytes = q8 ? 32 : 16;
      const uint64_t nb = (spec_.n + 31) / 32;
      const uint8_t* scales = payload_;
      const uint8_t* quants = payload_ + 2 * nb;
      produce_units(first, count, 32, dst, k, stream_, [&](uint64_t b, uint64_t c, float* d) {
        kernel(scales + 2 * b, quants + block_bytes * b, size_t(c), d);
      });
      if (last && units_ < nb) {  // partial last block, as the codec decodes it
        float tail[32];
        kernel(scales + 2 * units_, quants + block_bytes * units_, 1, tail);
        std::memcpy(dst + 32 * units_, tail, size_t(spec_.n - 32 * units_) * sizeof(float));
      }
      return;
    }
    case Codec::prng: {
      const PrngPayloadView& v = shared_->prng;
      const uint32_t C = spec_.prng.C;
      produce_units(first, count, C, dst, k, stream_, [&](uint64_t b, uint64_t c, float* d) {
        k.decode_prng_blocks(v, shared_->tables_ptr, b, c, d);
      });
      if (last && units_ < v.nb) {
        float tail[64];
        k.decode_prng_blocks(v, shared_->tables_ptr, units_, 1, tail);
        std::memcpy(dst + uint64_t(C) * units_, tail, size_t(spec_.n - uint64_t(C) * units_) * sizeof(float));
      }
      return;
    }
    case Codec::raw:
      switch (spec_.storage) {
        case Dtype::float16:
          produce_units(first, count, 1, dst, k, stream_, [&](uint64_t e, uint64_t c, float* d) {
            k.convert_f16_to_f32(payload_ + 2 * e, size_t(c), d);
          });
          return;
        case Dtype::bfloat16:
          produce_units(first, count, 1, dst, k, stream_, [&](uint64_t e, uint64_t c, float* d) {
            k.convert_bf16_to_f32(payload_ + 2 * e, size_t(c), d);
          });
          return;
        default: {  // float32 and integer storages: the payload bytes are the output
          const size_t item = dtype_itemsize(spec_.storage);
          std::memcpy(static_cast<uint8_t*>(out) + first * item, payload_ + first * item, size_t(count * item));
          return;
        }
      }
    case Codec::stats:
      break;  // never split
  }
}

}  // namespace seedcore
