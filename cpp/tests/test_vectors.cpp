// Decoder test vectors written by the Python reference (tests/vectors, see its
// README): every NAME.seed decoded by every available ISA (and "auto") must equal
// NAME.expected.bin byte for byte, and every bad/*.seed must be refused.
// Missing vectors are failures, not skips: the expected set is listed below, and
// any other NAME.seed found is checked too.
#include <dirent.h>

#include <algorithm>
#include <string>
#include <vector>

#include "seedcore/cpu.h"
#include "seedcore/seed_file.h"
#include "test_util.h"

using namespace seedcore;
using namespace seedtest;

namespace {

std::vector<std::string> list_dir(const std::string& dir, const std::string& suffix) {
  std::vector<std::string> out;
  DIR* d = opendir(dir.c_str());
  if (!d) return out;
  while (dirent* e = readdir(d)) {
    const std::string name = e->d_name;
    if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
      out.push_back(name.substr(0, name.size() - suffix.size()));
  }
  closedir(d);
  std::sort(out.begin(), out.end());
  return out;
}

void check_vector(const std::string& dir, const std::string& name) {
  bool ok = false;
  const std::vector<uint8_t> expected = read_file(dir + "/" + name + ".expected.bin", ok);
  CHECK_MSG(ok, "%s: %s.expected.bin is missing", dir.c_str(), name.c_str());
  if (!ok) return;
  std::vector<Isa> isas = {Isa::scalar};
  for (Isa isa : {Isa::avx2, Isa::neon})
    if (isa_available(isa)) isas.push_back(isa);
  isas.push_back(resolve_impl("auto"));
  for (Isa isa : isas) {
    try {
      SeedFile f(dir + "/" + name + ".seed");
      f.verify();
      for (unsigned threads : {1u, 3u}) {
        std::vector<std::vector<uint8_t>> outs;
        std::vector<size_t> idx;
        std::vector<void*> ptrs;
        for (size_t i = 0; i < f.tensors().size(); ++i) {
          outs.emplace_back(size_t(f.tensors()[i].spec.decoded_bytes()) + 1);
          idx.push_back(i);
        }
        for (auto& o : outs) ptrs.push_back(o.data());
        f.decode_many(idx, ptrs, threads, isa);
        std::vector<uint8_t> got;
        for (size_t i = 0; i < outs.size(); ++i) got.insert(got.end(), outs[i].begin(), outs[i].end() - 1);
        CHECK_MSG(got == expected, "%s.seed decoded with %s on %u threads differs from %s.expected.bin (%zu vs %zu bytes)",
                  name.c_str(), isa_name(isa), threads, name.c_str(), got.size(), expected.size());
        if (got != expected) {
          size_t off = 0;
          for (size_t i = 0; i < outs.size(); ++i) {
            const size_t len = outs[i].size() - 1;
            if (off + len > expected.size() || std::memcmp(outs[i].data(), expected.data() + off, len) != 0)
              std::fprintf(stderr, "    first differing tensor: '%s'\n", f.tensors()[i].name.c_str());
            off += len;
          }
        }
      }
    } catch (const std::exception& e) {
      CHECK_MSG(false, "%s.seed (%s): %s", name.c_str(), isa_name(isa), e.what());
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: test_vectors VECTORS_DIR\n");
    return 2;
  }
  const std::string dir = argv[1];
  std::vector<std::string> names = list_dir(dir, ".seed");
  // The set tests/make_vectors.py writes; each must be present.
  for (const char* required : {"raw", "q8", "q4", "prng", "stats", "ecq", "empty"}) {
    const bool present = std::find(names.begin(), names.end(), required) != names.end();
    CHECK_MSG(present, "vector %s/%s.seed is missing", dir.c_str(), required);
  }
  for (const std::string& name : names) check_vector(dir, name);
  std::printf("checked %zu vectors in %s\n", names.size(), dir.c_str());

  const std::string bad = dir + "/bad";
  const std::vector<std::string> bad_names = list_dir(bad, ".seed");
  CHECK_MSG(bad_names.size() >= 10, "expected the bad/*.seed files in %s, found %zu", bad.c_str(), bad_names.size());
  for (const std::string& name : bad_names) {
    const std::string path = bad + "/" + name + ".seed";
    if (name == "base_valid") {
      try {
        SeedFile f(path);
        f.verify();
      } catch (const std::exception& e) {
        CHECK_MSG(false, "%s must be accepted: %s", path.c_str(), e.what());
      }
      continue;
    }
    CHECK_THROWS_SEED(path, {
      SeedFile f(path);
      f.verify();
      for (size_t i = 0; i < f.tensors().size(); ++i) {
        std::vector<uint8_t> out(size_t(f.tensors()[i].spec.decoded_bytes()));
        f.decode_into(i, out.data(), Isa::scalar);
      }
    });
  }
  return finish("test_vectors");
}
