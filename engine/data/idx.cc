#include "engine/data/idx.h"

#include <zlib.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <memory>

#include "absl/strings/str_cat.h"
#include "engine/status_macros.h"

namespace qs {
namespace {

// Decompressed reads go through zlib's gz* API, which also reads plain files
// transparently, so one code path handles both .gz and raw IDX.
class GzReader {
 public:
  explicit GzReader(const std::string& path) : path_(path) {}
  ~GzReader() {
    if (file_ != nullptr) gzclose(file_);
  }

  absl::Status Open() {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path_, ec)) {
      return absl::NotFoundError(absl::StrCat("cannot open '", path_, "': no such file"));
    }
    file_ = gzopen(path_.c_str(), "rb");
    if (file_ == nullptr) {
      return absl::NotFoundError(absl::StrCat("cannot open '", path_, "'"));
    }
    gzbuffer(file_, 1 << 17);
    return absl::OkStatus();
  }

  // Reads up to `n` bytes into `dst`; returns the count (short only at EOF).
  absl::StatusOr<size_t> Read(char* dst, size_t n) {
    size_t done = 0;
    while (done < n) {
      unsigned chunk = static_cast<unsigned>(std::min<size_t>(n - done, 1 << 20));
      int got = gzread(file_, dst + done, chunk);
      if (got < 0) {
        int errnum = 0;
        const char* msg = gzerror(file_, &errnum);
        return absl::InvalidArgumentError(absl::StrCat(
            "'", path_, "': corrupt or truncated gzip data: ", msg ? msg : "?"));
      }
      if (got == 0) break;
      done += static_cast<size_t>(got);
    }
    return done;
  }

 private:
  std::string path_;
  gzFile file_ = nullptr;
};

uint32_t BigEndian32(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) |
         uint32_t{p[3]};
}

}  // namespace

absl::StatusOr<Tensor> ReadIdx(const std::string& path) {
  GzReader in(path);
  RETURN_IF_ERROR(in.Open());
  auto bad = [&](const std::string& msg) {
    return absl::InvalidArgumentError(absl::StrCat("'", path, "': ", msg));
  };

  unsigned char magic[4];
  ASSIGN_OR_RETURN(size_t got, in.Read(reinterpret_cast<char*>(magic), 4));
  if (got < 4) return bad("file too short for an IDX header");
  if (magic[0] != 0 || magic[1] != 0) {
    return bad(absl::StrCat("bad IDX magic: expected bytes 00 00, found ",
                            static_cast<int>(magic[0]), " ", static_cast<int>(magic[1])));
  }
  DataType dtype;
  switch (magic[2]) {
    case 0x08: dtype = DataType::kUint8; break;
    case 0x09: dtype = DataType::kInt8; break;
    case 0x0C: dtype = DataType::kInt32; break;
    case 0x0D: dtype = DataType::kFloat32; break;
    case 0x0B:
    case 0x0E:
      return absl::UnimplementedError(absl::StrCat(
          "'", path, "': IDX type 0x", absl::Hex(magic[2]),
          " (int16/float64) is not supported"));
    default:
      return bad(absl::StrCat("unknown IDX data type 0x", absl::Hex(magic[2])));
  }
  const int ndims = magic[3];
  if (ndims < 1 || ndims > 8) {
    return bad(absl::StrCat("IDX ndims must be 1..8, found ", ndims));
  }

  unsigned char dim_bytes[8 * 4];
  ASSIGN_OR_RETURN(got, in.Read(reinterpret_cast<char*>(dim_bytes), 4 * ndims));
  if (got < static_cast<size_t>(4 * ndims)) return bad("truncated IDX dimensions");
  Shape shape;
  uint64_t count = 1;
  for (int i = 0; i < ndims; ++i) {
    uint32_t d = BigEndian32(dim_bytes + 4 * i);
    shape.push_back(d);
    // Each dim is < 2^32 and count stays <= 2^33 here, so this cannot overflow.
    if (count != 0) count *= d;
    if (count > kMaxIdxElements) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "'", path, "': IDX dims ", ShapeToString(shape),
          "... exceed the limit of 2^33 elements"));
    }
  }
  const size_t item = DataTypeSize(dtype);
  const uint64_t expected = count * item;

  // The header is untrusted and a gzip stream's real size is unknown until it
  // is inflated, so the payload is read in chunks into a buffer that grows
  // only as data actually arrives; the tensor is allocated once it is known
  // to be exactly the right size. One extra byte detects trailing data.
  std::string payload;
  constexpr size_t kChunk = 1 << 20;
  while (payload.size() <= expected) {
    size_t want = std::min<uint64_t>(kChunk, expected + 1 - payload.size());
    size_t old = payload.size();
    payload.resize(old + want);
    ASSIGN_OR_RETURN(size_t n, in.Read(payload.data() + old, want));
    payload.resize(old + n);
    if (n < want) break;  // EOF
  }
  if (payload.size() < expected) {
    return bad(absl::StrCat("IDX payload truncated: dims ", ShapeToString(shape),
                            " of ", DataTypeName(dtype), " need ", expected,
                            " bytes, found ", payload.size()));
  }
  if (payload.size() > expected) {
    return bad(absl::StrCat("IDX payload longer than dims ", ShapeToString(shape),
                            " of ", DataTypeName(dtype), " imply (", expected,
                            " bytes)"));
  }

  Tensor t(dtype, shape);
  if (item == 1) {
    if (expected > 0) std::memcpy(t.raw_data(), payload.data(), expected);
  } else {
    // 4-byte big-endian ints/floats: assemble the bits, then copy them in.
    const auto* src = reinterpret_cast<const unsigned char*>(payload.data());
    auto* dst = static_cast<unsigned char*>(t.raw_data());
    for (uint64_t i = 0; i < count; ++i) {
      uint32_t v = BigEndian32(src + 4 * i);
      std::memcpy(dst + 4 * i, &v, 4);
    }
  }
  return t;
}

}  // namespace qs
