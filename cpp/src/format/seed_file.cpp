// .seed reader: mapping, the validation order of format.md, payload checks, and
// multi-threaded decoding (tensors checked in parallel, then their outputs decoded
// one 2 MiB window at a time by several threads).
#include "seedcore/seed_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>
#include <unordered_set>

#include "seedcore/crc32.h"
#include "seedcore/error.h"
#include "seedcore/json.h"
#include "tensor_pieces.h"

namespace seedcore {
namespace {

constexpr uint64_t kHeaderSize = 64;
constexpr uint64_t kMaxMetadataLength = uint64_t(16) << 20;

uint64_t align64(uint64_t x) { return (x + 63) & ~uint64_t(63); }

uint32_t read_u32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}
uint64_t read_u64(const uint8_t* p) { return uint64_t(read_u32(p)) | uint64_t(read_u32(p + 4)) << 32; }

bool all_zero(const uint8_t* p, uint64_t n) {
  for (uint64_t i = 0; i < n; ++i)
    if (p[i] != 0) return false;
  return true;
}

std::string hex32(uint32_t v) {
  char buf[16];
  std::snprintf(buf, sizeof buf, "0x%08x", v);
  return buf;
}

}  // namespace

uint64_t physical_memory_bytes() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0) return UINT64_MAX;
  return uint64_t(pages) * uint64_t(page);
}

SeedFile::SeedFile(const std::string& path, uint64_t max_bytes) : path_(path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw SeedError(path + ": cannot open: " + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    throw SeedError(path + ": cannot stat: " + std::strerror(e));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw SeedError(path + ": not a regular file");
  }
  size_ = uint64_t(st.st_size);
  if (size_ < kHeaderSize) {
    ::close(fd);
    throw SeedError(path + ": header: file is " + std::to_string(size_) +
                    " bytes, shorter than the 64-byte header (truncated?)");
  }
  void* p = ::mmap(nullptr, size_t(size_), PROT_READ, MAP_PRIVATE, fd, 0);
  const int e = errno;
  ::close(fd);
  if (p == MAP_FAILED) throw SeedError(path + ": cannot map: " + std::strerror(e));
  data_ = static_cast<const uint8_t*>(p);
  mapped_ = true;
  try {
    validate(max_bytes);
  } catch (...) {
    ::munmap(const_cast<uint8_t*>(data_), size_t(size_));
    data_ = nullptr;
    mapped_ = false;
    throw;
  }
}

std::unique_ptr<SeedFile> SeedFile::from_bytes(std::vector<uint8_t> bytes, const std::string& display_name,
                                               uint64_t max_bytes) {
  std::unique_ptr<SeedFile> f(new SeedFile());
  f->path_ = display_name;
  f->owned_ = std::move(bytes);
  f->size_ = f->owned_.size();
  if (f->size_ < kHeaderSize)
    throw SeedError(display_name + ": header: file is " + std::to_string(f->size_) +
                    " bytes, shorter than the 64-byte header (truncated?)");
  f->data_ = f->owned_.data();
  f->validate(max_bytes);
  return f;
}

SeedFile::~SeedFile() { close(); }

void SeedFile::close() {
  std::unique_lock<std::shared_mutex> lock(lifetime_);
  if (mapped_ && data_ != nullptr) ::munmap(const_cast<uint8_t*>(data_), size_t(size_));
  data_ = nullptr;
  mapped_ = false;
  owned_.clear();
  owned_.shrink_to_fit();
}

bool SeedFile::is_open() const {
  std::shared_lock<std::shared_mutex> lock(lifetime_);
  return data_ != nullptr;
}

void SeedFile::require_open() const {
  if (data_ == nullptr) throw SeedError(path_ + ": the file is closed");
}

std::string_view SeedFile::metadata_json() const {
  std::shared_lock<std::shared_mutex> lock(lifetime_);
  require_open();
  return std::string_view(reinterpret_cast<const char*>(data_ + kHeaderSize), size_t(metadata_length_));
}

std::string SeedFile::tensor_where(size_t index) const {
  return path_ + ": tensor '" + tensors_[index].name + "'";
}

void SeedFile::validate(uint64_t max_bytes) {
  const uint8_t* h = data_;
  auto fail = [&](const std::string& part, const std::string& what) -> void {
    throw SeedError(path_ + ": " + part + ": " + what);
  };

  // --- header, in the order of format.md 1.1 ---
  if (std::memcmp(h, "SEEDCORE", 8) != 0) fail("header", "magic is not 'SEEDCORE' (not a seed file)");
  const uint32_t version = read_u32(h + 8);
  if (version != 1)
    fail("header", "format_version is " + std::to_string(version) + "; this reader knows version 1 only");
  const uint32_t header_size = read_u32(h + 12);
  if (header_size != kHeaderSize) fail("header", "header_size is " + std::to_string(header_size) + ", expected 64");
  const uint64_t metadata_offset = read_u64(h + 16);
  if (metadata_offset != kHeaderSize)
    fail("header", "metadata_offset is " + std::to_string(metadata_offset) + ", expected 64");
  const uint64_t mlen = read_u64(h + 24);
  if (mlen < 2 || mlen > kMaxMetadataLength)
    fail("header", "metadata_length is " + std::to_string(mlen) + ", allowed 2..16777216");
  const uint64_t data_offset = read_u64(h + 32);
  if (data_offset != align64(kHeaderSize + mlen))
    fail("header", "data_offset is " + std::to_string(data_offset) + ", expected " +
                       std::to_string(align64(kHeaderSize + mlen)) + " = align64(64 + metadata_length)");
  const uint64_t file_length = read_u64(h + 40);
  if (file_length != size_)
    fail("header", "file_length is " + std::to_string(file_length) + " but the file is " + std::to_string(size_) +
                       " bytes (truncated or extended?)");
  const uint32_t flags = read_u32(h + 48);
  if (flags != 0) fail("header", "flags is " + hex32(flags) + ", must be 0 in version 1");
  if (!all_zero(h + 52, 8)) fail("header", "reserved bytes 52..59 are not zero");
  if (data_offset > size_)
    fail("header", "metadata and its padding end at " + std::to_string(data_offset) + ", past the end of the " +
                       std::to_string(size_) + "-byte file (truncated?)");
  metadata_length_ = mlen;
  const uint32_t crc = crc32(data_ + kHeaderSize, size_t(mlen), crc32(h, 60));
  const uint32_t stored_crc = read_u32(h + 60);
  if (crc != stored_crc)
    fail("header", "header_crc32 is " + hex32(stored_crc) + " but header+metadata checksum to " + hex32(crc) +
                       " (corrupt header or metadata)");

  // --- metadata ---
  const std::string_view text(reinterpret_cast<const char*>(data_ + kHeaderSize), size_t(mlen));
  const JsonDocument doc = JsonDocument::parse(text, path_ + ": metadata");
  using Kind = JsonDocument::Kind;
  const uint32_t root = doc.root();
  if (doc.kind(root) != Kind::object) fail("metadata", "the top level is not a JSON object");
  for (const char* key : {"format", "format_version", "model", "tool", "tensors", "graph", "provenance"})
    if (doc.find(root, key) == JsonDocument::kNone)
      fail("metadata", std::string("required key '") + key + "' is missing");
  const uint32_t fmt = doc.find(root, "format");
  if (doc.kind(fmt) != Kind::string || doc.string_value(fmt) != "seedcore")
    fail("metadata", "'format' is not \"seedcore\"");
  int64_t meta_version = 0;
  if (!doc.integer_in(doc.find(root, "format_version"), 1, 1, meta_version))
    fail("metadata", "'format_version' does not equal the header's format_version 1");
  for (const auto& obj : {std::make_pair("model", std::make_pair("name", "source")),
                          std::make_pair("tool", std::make_pair("name", "version"))}) {
    const uint32_t o = doc.find(root, obj.first);
    if (doc.kind(o) != Kind::object) fail("metadata", std::string("'") + obj.first + "' must be an object");
    for (const char* k : {obj.second.first, obj.second.second}) {
      const uint32_t v = doc.find(o, k);
      if (v == JsonDocument::kNone || doc.kind(v) != Kind::string)
        fail("metadata", std::string("'") + obj.first + "." + k + "' must be a string");
    }
    if (doc.node(o).count != 2) fail("metadata", std::string("'") + obj.first + "' has unknown keys");
  }
  const uint32_t prov = doc.find(root, "provenance");
  if (doc.kind(prov) != Kind::null && doc.kind(prov) != Kind::object)
    fail("metadata", "'provenance' must be null or an object");
  const uint32_t list = doc.find(root, "tensors");
  if (doc.kind(list) != Kind::array) fail("metadata", "'tensors' must be a list");

  // --- tensor entries ---
  tensors_.reserve(doc.node(list).count);
  std::unordered_set<std::string> names;
  uint64_t expected_offset = data_offset;
  size_t index = 0;
  for (uint32_t t = doc.node(list).first; t != JsonDocument::kNone; t = doc.node(t).next, ++index) {
    std::string part = "tensor " + std::to_string(index);
    if (doc.kind(t) != Kind::object) fail(part, "entry is not an object");
    const uint32_t name_node = doc.find(t, "name");
    if (name_node != JsonDocument::kNone && doc.kind(name_node) == Kind::string)
      part = "tensor '" + std::string(doc.string_value(name_node)) + "'";
    static const char* const kKeys[] = {"name", "shape", "dtype", "codec", "params", "offset", "length", "crc32"};
    for (const char* k : kKeys)
      if (doc.find(t, k) == JsonDocument::kNone) fail(part, std::string("missing key '") + k + "'");
    if (doc.node(t).count != 8) {
      for (uint32_t m = doc.node(t).first; m != JsonDocument::kNone; m = doc.node(m).next) {
        bool known = false;
        for (const char* k : kKeys) known = known || doc.key(m) == k;
        if (!known) fail(part, "unknown key '" + std::string(doc.key(m)) + "'");
      }
    }
    if (doc.kind(name_node) != Kind::string) fail(part, "'name' must be a string");
    const std::string name(doc.string_value(name_node));
    if (name.empty() || name.size() > 1024)
      fail(part, "name is " + std::to_string(name.size()) + " bytes of UTF-8, allowed 1..1024");
    const std::string where = path_ + ": " + part;
    const uint32_t shape_node = doc.find(t, "shape");
    if (doc.kind(shape_node) != Kind::array) fail(part, "'shape' must be a list of integers");
    std::vector<uint64_t> shape;
    if (doc.node(shape_node).count > 8)
      fail(part, "shape has " + std::to_string(doc.node(shape_node).count) + " dimensions (at most 8)");
    for (uint32_t d = doc.node(shape_node).first; d != JsonDocument::kNone; d = doc.node(d).next) {
      uint64_t v = 0;
      if (!doc.unsigned_integer(d, v)) fail(part, "shape holds a dimension that is not a non-negative integer");
      shape.push_back(v);
    }
    const uint32_t dtype_node = doc.find(t, "dtype"), codec_node = doc.find(t, "codec");
    checked_element_count(shape, where);
    if (doc.kind(dtype_node) != Kind::string) fail(part, "'dtype' must be a string");
    if (doc.kind(codec_node) != Kind::string) fail(part, "'codec' must be a string");
    TensorEntry entry;
    entry.spec = make_tensor_spec(std::move(shape), std::string(doc.string_value(dtype_node)),
                                  std::string(doc.string_value(codec_node)), doc, doc.find(t, "params"), where);
    if (!names.insert(name).second) fail(part, "duplicate tensor name");
    entry.name = name;
    const std::string ctx = tensor_context(where, entry.spec);
    if (!doc.unsigned_integer(doc.find(t, "offset"), entry.offset))
      throw SeedError(ctx + ": 'offset' must be a non-negative integer");
    if (!doc.unsigned_integer(doc.find(t, "length"), entry.length))
      throw SeedError(ctx + ": 'length' must be a non-negative integer");
    int64_t crc_value = 0;
    if (!doc.integer_in(doc.find(t, "crc32"), 0, int64_t(0xFFFFFFFFu), crc_value))
      throw SeedError(ctx + ": 'crc32' must be an integer in 0..2^32-1");
    entry.crc32 = uint32_t(crc_value);
    const uint64_t expected = expected_payload_length(entry.spec);
    if (entry.length != expected)
      throw SeedError(ctx + ": payload length " + std::to_string(entry.length) + " does not match the " +
                      std::to_string(expected) + " bytes that shape " + entry.spec.shape_string() + " needs");
    if (entry.offset != expected_offset)
      throw SeedError(ctx + ": offset is " + std::to_string(entry.offset) + ", expected " +
                      std::to_string(expected_offset) + " (payloads are back to back, 64-byte aligned)");
    // expected_offset ≤ size_ (checked below each step) and length < 2^40: no overflow.
    if (entry.length > size_ - entry.offset)
      throw SeedError(ctx + ": payload [" + std::to_string(entry.offset) + ", " +
                      std::to_string(entry.offset + entry.length) + ") runs past the end of the " +
                      std::to_string(size_) + "-byte file");
    expected_offset = align64(entry.offset + entry.length);
    if (expected_offset > size_)
      throw SeedError(ctx + ": padding after the payload runs past the end of the file");
    tensors_.push_back(std::move(entry));
  }
  if (size_ != expected_offset)
    fail("header", "file_length is " + std::to_string(size_) + " but the payloads end at " +
                       std::to_string(expected_offset) + " (trailing bytes or missing payloads)");

  // --- memory bound, before anyone allocates a decoded tensor ---
  const uint64_t limit = max_bytes ? max_bytes : physical_memory_bytes();
  uint64_t total = 0;
  for (const TensorEntry& e : tensors_) {
    const uint64_t b = e.spec.decoded_bytes();
    total = total > UINT64_MAX - b ? UINT64_MAX : total + b;
  }
  total_decoded_bytes_ = total;
  if (total > limit)
    fail("tensors", "the tensors decode to " + std::to_string(total) + " bytes, more than the " +
                        std::to_string(limit) + " bytes this reader may use");

  // --- zero padding ---
  const uint64_t meta_end = kHeaderSize + mlen;
  if (!all_zero(data_ + meta_end, data_offset - meta_end))
    fail("padding", "bytes " + std::to_string(meta_end) + ".." + std::to_string(data_offset - 1) +
                        " after the metadata are not zero");
  for (size_t i = 0; i < tensors_.size(); ++i) {
    const uint64_t end = tensors_[i].offset + tensors_[i].length;
    if (!all_zero(data_ + end, align64(end) - end))
      fail("padding after tensor '" + tensors_[i].name + "'",
           "bytes " + std::to_string(end) + ".." + std::to_string(align64(end) - 1) + " are not zero");
  }
}

size_t SeedFile::index_of(const std::string& name) const {
  for (size_t i = 0; i < tensors_.size(); ++i)
    if (tensors_[i].name == name) return i;
  throw SeedError(path_ + ": no tensor named '" + name + "'");
}

void SeedFile::check_tensor(size_t index, bool fully) const {
  const TensorEntry& e = tensors_.at(index);
  const uint8_t* payload = data_ + e.offset;
  const uint32_t crc = crc32(payload, size_t(e.length));
  if (crc != e.crc32)
    throw SeedError(tensor_context(tensor_where(index), e.spec) + ": payload checksum is " + hex32(crc) +
                    ", the metadata says " + hex32(e.crc32) + " (corrupt payload)");
  if (fully)
    check_payload_fully(e.spec, payload, tensor_where(index));
  else
    check_payload_decodable(e.spec, payload, tensor_where(index));
}

void SeedFile::verify_tensor(size_t index) const {
  std::shared_lock<std::shared_mutex> lock(lifetime_);
  require_open();
  check_tensor(index, true);
}

void SeedFile::verify() const {
  std::shared_lock<std::shared_mutex> lock(lifetime_);
  require_open();
  for (size_t i = 0; i < tensors_.size(); ++i) {
    check_tensor(i, true);
    release_payload_locked(i);  // a whole-file check keeps one payload resident at a time
  }
}

void SeedFile::release_payload(size_t index) const {
  std::shared_lock<std::shared_mutex> lock(lifetime_);
  require_open();
  (void)tensors_.at(index);
  release_payload_locked(index);
}

void SeedFile::release_payload_locked(size_t index) const {
  if (!mapped_) return;
  const TensorEntry& e = tensors_[index];
  if (e.length == 0) return;
  // Every page the payload touches, shared edge pages included: the mapping is
  // private and never written, so a neighbour that still reads such a page just
  // faults it in again from the page cache.
  static const uintptr_t page = uintptr_t(sysconf(_SC_PAGE_SIZE) > 0 ? sysconf(_SC_PAGE_SIZE) : 4096);
  const uintptr_t base = reinterpret_cast<uintptr_t>(data_);
  const uintptr_t begin = (base + e.offset) & ~(page - 1);
  const uintptr_t end = std::min<uintptr_t>((base + e.offset + e.length + page - 1) & ~(page - 1),
                                            (base + size_ + page - 1) & ~(page - 1));
  if (end > begin) (void)::madvise(reinterpret_cast<void*>(begin), size_t(end - begin), MADV_DONTNEED);
}

void SeedFile::decode_into(size_t index, void* out, Isa isa) const {
  std::shared_lock<std::shared_mutex> lock(lifetime_);
  require_open();
  check_tensor(index, false);  // decoding checks the rest (ecq's streams)
  const TensorEntry& e = tensors_.at(index);
  decode_checked_payload(e.spec, data_ + e.offset, out, isa, tensor_where(index));
}

namespace {

// decode_many's unit of work: the output bytes inside one 2 MiB-aligned window of
// addresses, the size of a transparent huge page (the Python binding's output arena
// is 2 MiB aligned and advised for huge pages). The thread that takes a window faults
// its page in (the kernel zeroes it, leaving its lines in that core's cache) and
// decodes into it at once with ordinary stores, which then hit the cache: the page's
// memory is written once. Non-temporal stores, or a page faulted by one core and
// written by another, would move it through memory twice. 2 MiB also balances: the
// 47 MB embedding table of MiniLM is 23 windows.
constexpr uint64_t kWindowBytes = uint64_t(2) << 20;

// Runs job(worker) on `threads` threads (the calling one included) and joins them.
template <class Job>
void run_on_threads(unsigned threads, Job job) {
  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  for (unsigned t = 1; t < threads; ++t) pool.emplace_back(job);
  job();
  for (std::thread& th : pool) th.join();
}

}  // namespace

void SeedFile::decode_many(const std::vector<size_t>& indices, const std::vector<void*>& outs, unsigned threads,
                           Isa isa) const {
  if (indices.size() != outs.size()) throw SeedError(path_ + ": decode_many: indices and outputs differ in count");
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  if (indices.empty()) return;
  // One thread runs the same two phases inline (run_on_threads starts no thread).
  std::shared_lock<std::shared_mutex> lock(lifetime_);  // held for both phases
  require_open();
  for (size_t index : indices) (void)tensors_.at(index);  // out-of-range indices throw here

  // Phase 1, in parallel over tensors (largest payload first): CRC and payload rules
  // of every tensor, and what each tensor's pieces share. No output byte is written
  // before every payload has passed (a corrupt file decodes nothing), except for the
  // rules that only decoding checks (ecq's streams): phase 2 refuses those, after
  // other outputs may have been written.
  std::vector<size_t> order(indices.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return tensors_[indices[a]].length > tensors_[indices[b]].length;
  });
  PrngTableCache tables;
  std::vector<std::unique_ptr<TensorPieces>> pieces(indices.size());
  std::vector<std::exception_ptr> errors(indices.size());
  std::atomic<size_t> next{0};
  std::atomic<bool> failed{false};
  run_on_threads(unsigned(std::min<size_t>(threads, indices.size())), [&] {
    for (;;) {
      const size_t k = next.fetch_add(1);
      if (k >= order.size() || failed.load()) return;
      const size_t i = order[k];
      try {
        const TensorEntry& e = tensors_[indices[i]];
        if (mapped_) prefault_for_read(data_ + e.offset, e.length);
        check_tensor(indices[i], false);
        pieces[i].reset(new TensorPieces(e.spec, data_ + e.offset, isa, outs[i], kWindowBytes, tensor_where(indices[i]),
                                         &tables));
        // Phase 2 reads it again (from the page cache): until then the payload need
        // not be resident, so the seed and the decoded outputs do not add up in RSS.
        release_payload_locked(indices[i]);
      } catch (...) {
        errors[i] = std::current_exception();
        failed.store(true);
      }
    }
  });
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);

  // Phase 2: one job per output window (every piece of every tensor inside it), fullest
  // first, taken by whichever thread is free. The pieces of one large tensor spread
  // over the threads, and each window's page is first touched, then written, by one
  // thread.
  struct Piece { uintptr_t window, begin, end; size_t tensor, piece; };
  std::vector<Piece> all;
  for (size_t i = 0; i < indices.size(); ++i)
    for (size_t p = 0; p < pieces[i]->count(); ++p) {
      uintptr_t begin = 0, end = 0;
      pieces[i]->output_range(p, begin, end);
      all.push_back({begin / kWindowBytes, begin, end, i, p});
    }
  std::sort(all.begin(), all.end(), [](const Piece& a, const Piece& b) {
    return a.window != b.window ? a.window < b.window : a.begin < b.begin;
  });
  struct Job { size_t first, last; uintptr_t begin, end; uint64_t bytes; };  // all[first, last)
  std::vector<Job> jobs;
  for (size_t k = 0; k < all.size(); ++k) {
    if (jobs.empty() || all[jobs.back().first].window != all[k].window)
      jobs.push_back({k, k, all[k].begin, all[k].end, 0});
    Job& job = jobs.back();
    job.last = k + 1;
    job.begin = std::min(job.begin, all[k].begin);
    job.end = std::max(job.end, all[k].end);
    job.bytes += all[k].end - all[k].begin;
  }
  std::stable_sort(jobs.begin(), jobs.end(), [](const Job& a, const Job& b) { return a.bytes > b.bytes; });
  // Pieces left per tensor: the thread that decodes a tensor's last piece releases
  // its payload's pages (see release_payload).
  std::unique_ptr<std::atomic<size_t>[]> left(new std::atomic<size_t>[indices.size()]);
  for (size_t i = 0; i < indices.size(); ++i) left[i].store(pieces[i]->count());
  next.store(0);
  std::mutex errors_mutex;  // pieces of one tensor may fail on two threads at once
  run_on_threads(unsigned(std::min<size_t>(threads, jobs.size())), [&] {
    for (;;) {
      const size_t k = next.fetch_add(1);
      if (k >= jobs.size() || failed.load()) return;
      const Job& job = jobs[k];
      prefault_for_write(reinterpret_cast<void*>(job.begin), job.end - job.begin);
      for (size_t q = job.first; q < job.last; ++q) {
        const Piece& piece = all[q];
        try {
          pieces[piece.tensor]->decode(piece.piece);
          if (left[piece.tensor].fetch_sub(1) == 1) release_payload_locked(indices[piece.tensor]);
        } catch (...) {  // a stream rule of ecq (a SeedError naming the tensor), or allocation
          {
            std::lock_guard<std::mutex> guard(errors_mutex);
            std::exception_ptr& slot = errors[piece.tensor];
            if (!slot) slot = std::current_exception();
          }
          failed.store(true);
          break;  // the job's other pieces would be discarded anyway
        }
      }
    }
  });
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace seedcore
