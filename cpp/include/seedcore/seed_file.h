// Reading a .seed file (format.md): open = map + validate header, metadata and the
// tensor table (everything except payload CRCs, so opening a large file is fast);
// verify() checks every payload; decode_into() checks one payload's CRC and rules
// before decoding it (ecq's stream rules while decoding it). Every refusal is a SeedError naming the file, the part and
// what is wrong.
#pragma once
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <vector>

#include "seedcore/cpu.h"
#include "seedcore/tensor_spec.h"

namespace seedcore {

struct TensorEntry {
  std::string name;
  TensorSpec spec;
  uint64_t offset = 0, length = 0;
  uint32_t crc32 = 0;
};

// The machine's physical memory in bytes (sysconf), the default decode budget.
uint64_t physical_memory_bytes();

class SeedFile {
 public:
  // Maps and validates `path`. max_bytes bounds the total decoded size of all
  // tensors (0 = physical memory).
  explicit SeedFile(const std::string& path, uint64_t max_bytes = 0);
  // Validates an in-memory image; `display_name` stands in for the path in errors.
  static std::unique_ptr<SeedFile> from_bytes(std::vector<uint8_t> bytes, const std::string& display_name,
                                              uint64_t max_bytes = 0);
  ~SeedFile();
  SeedFile(const SeedFile&) = delete;
  SeedFile& operator=(const SeedFile&) = delete;

  const std::string& path() const { return path_; }
  uint64_t file_length() const { return size_; }
  std::string_view metadata_json() const;
  const std::vector<TensorEntry>& tensors() const { return tensors_; }
  uint64_t total_decoded_bytes() const { return total_decoded_bytes_; }
  // Index of the tensor named `name`; throws SeedError when there is none.
  size_t index_of(const std::string& name) const;

  // CRC-32 and every rule of every payload (check_payload_fully: ecq's streams are
  // decoded, without writing), in file order; throws on the first problem.
  void verify() const;
  void verify_tensor(size_t index) const;
  // CRC-32 and check_payload_decodable, then decode into `out` (spec.decoded_bytes()
  // bytes), checking ecq's stream rules while decoding: a SeedError either way, and
  // `out` is then undefined.
  void decode_into(size_t index, void* out, Isa isa) const;
  // Decodes tensors[indices[i]] into outs[i] on up to `threads` threads (0 = hardware
  // concurrency): first every payload's CRC and check_payload_decodable (in parallel,
  // nothing written unless all pass), then the decoding, one 2 MiB window of output
  // addresses at a time (large tensors span many windows, which threads share). Made
  // for fresh, not yet faulted outputs: each window is populated right before it is
  // decoded and written with ordinary stores while its zeroed lines are cache-hot.
  // Results are identical for any thread count. ecq's stream rules are checked while
  // decoding: a stream that breaks one throws after other outputs may have been
  // written (the outputs are then undefined; nothing outside them is written).
  // Rethrows the first error (in the order of `indices`) after all threads stop.
  void decode_many(const std::vector<size_t>& indices, const std::vector<void*>& outs, unsigned threads,
                   Isa isa) const;

  // Drops the pages of tensor `index`'s payload from the process's resident memory
  // (MADV_DONTNEED on the read-only file mapping: they stay in the page cache and are
  // read again if touched). Bounded-RAM assembly calls it after each tensor, so the
  // seed's pages do not pile up in RSS. A no-op for in-memory images.
  void release_payload(size_t index) const;

  // Unmaps the file; later calls throw SeedError. Waits for decodes in flight.
  void close();
  bool is_open() const;

 private:
  SeedFile() = default;
  void validate(uint64_t max_bytes);
  void require_open() const;
  // CRC-32 and check_payload_decodable of one payload (check_payload_fully when
  // `fully`: verify; decoding checks the rest itself); the caller holds lifetime_.
  void check_tensor(size_t index, bool fully) const;
  std::string tensor_where(size_t index) const;
  // release_payload without the lock (the caller holds lifetime_).
  void release_payload_locked(size_t index) const;

  std::string path_;
  const uint8_t* data_ = nullptr;
  uint64_t size_ = 0;
  bool mapped_ = false;             // data_ is an mmap (else it points into owned_)
  std::vector<uint8_t> owned_;
  uint64_t metadata_length_ = 0;
  std::vector<TensorEntry> tensors_;
  uint64_t total_decoded_bytes_ = 0;
  mutable std::shared_mutex lifetime_;  // shared: decoding/verifying; exclusive: close
};

}  // namespace seedcore
