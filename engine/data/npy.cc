#include "engine/data/npy.h"

#include <cstdint>
#include <cstring>
#include <fstream>
#include <limits>
#include <optional>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "engine/status_macros.h"

namespace qs {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;

struct NpyHeader {
  std::optional<std::string> descr;
  std::optional<bool> fortran_order;
  std::optional<Shape> shape;
};

// A parser for the tiny subset of Python literal syntax numpy writes in the
// header: a dict with string keys whose values are strings, True/False or a
// tuple of ints. Hand-written files may reorder keys, add spaces or leave
// trailing commas, so the grammar is whitespace- and order-insensitive.
class HeaderParser {
 public:
  HeaderParser(const std::string& text, const std::string& what)
      : s_(text), what_(what) {}

  absl::StatusOr<NpyHeader> Parse() {
    NpyHeader h;
    RETURN_IF_ERROR(Expect('{'));
    while (true) {
      SkipSpace();
      if (Peek() == '}') break;
      std::string key;
      RETURN_IF_ERROR(ParseString(&key));
      RETURN_IF_ERROR(Expect(':'));
      SkipSpace();
      if (key == "descr" && !h.descr) {
        std::string v;
        RETURN_IF_ERROR(ParseString(&v));
        h.descr = v;
      } else if (key == "fortran_order" && !h.fortran_order) {
        ASSIGN_OR_RETURN(h.fortran_order, ParseBool());
      } else if (key == "shape" && !h.shape) {
        ASSIGN_OR_RETURN(h.shape, ParseTuple());
      } else {
        return Error(absl::StrCat("unexpected or duplicate key '", key, "'"));
      }
      SkipSpace();
      if (Peek() == ',') {
        ++pos_;
        continue;
      }
      if (Peek() != '}') return Error("expected ',' or '}'");
    }
    ++pos_;  // '}'
    SkipSpace();
    if (pos_ != s_.size()) return Error("trailing characters after the dict");
    if (!h.descr || !h.fortran_order || !h.shape) {
      return Error("header must contain 'descr', 'fortran_order' and 'shape'");
    }
    return h;
  }

 private:
  char Peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void SkipSpace() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' ||
                                s_[pos_] == '\n' || s_[pos_] == '\r')) {
      ++pos_;
    }
  }
  absl::Status Error(const std::string& msg) const {
    return absl::InvalidArgumentError(absl::StrCat(
        what_, ": malformed .npy header at offset ", pos_, ": ", msg));
  }
  absl::Status Expect(char c) {
    SkipSpace();
    if (Peek() != c) return Error(absl::StrCat("expected '", std::string(1, c), "'"));
    ++pos_;
    return absl::OkStatus();
  }
  absl::Status ParseString(std::string* out) {
    char quote = Peek();
    if (quote != '\'' && quote != '"') return Error("expected a quoted string");
    size_t end = s_.find(quote, pos_ + 1);
    if (end == std::string::npos) return Error("unterminated string");
    *out = s_.substr(pos_ + 1, end - pos_ - 1);
    pos_ = end + 1;
    return absl::OkStatus();
  }
  absl::StatusOr<bool> ParseBool() {
    if (s_.compare(pos_, 4, "True") == 0) {
      pos_ += 4;
      return true;
    }
    if (s_.compare(pos_, 5, "False") == 0) {
      pos_ += 5;
      return false;
    }
    return Error("expected True or False");
  }
  absl::StatusOr<Shape> ParseTuple() {
    RETURN_IF_ERROR(Expect('('));
    Shape shape;
    while (true) {
      SkipSpace();
      if (Peek() == ')') break;
      if (Peek() < '0' || Peek() > '9') return Error("expected a dimension");
      int64_t v = 0;
      while (Peek() >= '0' && Peek() <= '9') {
        // Cap well below int64 overflow; the size check rejects such dims.
        if (v > (int64_t{1} << 50)) return Error("dimension too large");
        v = v * 10 + (Peek() - '0');
        ++pos_;
      }
      if (Peek() == 'L') ++pos_;  // Python 2 long literal, e.g. (3L,)
      shape.push_back(v);
      SkipSpace();
      if (Peek() == ',') {
        ++pos_;
      } else if (Peek() != ')') {
        return Error("expected ',' or ')' in shape");
      }
    }
    ++pos_;  // ')'
    return shape;
  }

  const std::string& s_;
  const std::string& what_;
  size_t pos_ = 0;
};

// numpy descr <-> DataType. Single-byte types have no byte order, so any
// order character is accepted for them; multi-byte types must be
// little-endian (or native '=', which is little-endian on our targets).
std::optional<DataType> DescrToDataType(const std::string& descr) {
  if (descr.size() != 3) return std::nullopt;
  char order = descr[0];
  std::string code = descr.substr(1);
  bool single = code == "u1" || code == "i1" || code == "b1";
  if (single) {
    if (order != '|' && order != '<' && order != '>' && order != '=') {
      return std::nullopt;
    }
  } else if (order != '<' && order != '=') {
    return std::nullopt;
  }
  if (code == "f4") return DataType::kFloat32;
  if (code == "f8") return DataType::kFloat64;
  if (code == "u1") return DataType::kUint8;
  if (code == "i1") return DataType::kInt8;
  if (code == "i4") return DataType::kInt32;
  if (code == "i8") return DataType::kInt64;
  if (code == "b1") return DataType::kBool;
  return std::nullopt;
}

const char* DataTypeToDescr(DataType dtype) {
  switch (dtype) {
    case DataType::kFloat32: return "<f4";
    case DataType::kFloat64: return "<f8";
    case DataType::kUint8: return "|u1";
    case DataType::kInt8: return "|i1";
    case DataType::kInt32: return "<i4";
    case DataType::kInt64: return "<i8";
    case DataType::kBool: return "|b1";
    case DataType::kUndefined: return nullptr;
  }
  return nullptr;
}

uint32_t ReadLe(const std::string& b, size_t off, size_t n) {
  uint32_t v = 0;
  for (size_t i = 0; i < n; ++i) {
    v |= static_cast<uint32_t>(static_cast<uint8_t>(b[off + i])) << (8 * i);
  }
  return v;
}

}  // namespace

absl::StatusOr<Tensor> ReadNpyBytes(const std::string& bytes,
                                    const std::string& what) {
  if (bytes.size() < 10 || bytes.compare(0, kMagicLen, kMagic, kMagicLen) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": not a .npy file (missing \\x93NUMPY magic)"));
  }
  int major = static_cast<uint8_t>(bytes[6]);
  // v1 has a 2-byte header length; v2 widened it to 4; v3 only changed the
  // header's text encoding to UTF-8, which our ASCII grammar is a subset of.
  size_t len_bytes;
  if (major == 1) {
    len_bytes = 2;
  } else if (major == 2 || major == 3) {
    len_bytes = 4;
  } else {
    return absl::UnimplementedError(absl::StrCat(
        what, ": unsupported .npy format version ", major, ".",
        static_cast<int>(static_cast<uint8_t>(bytes[7]))));
  }
  size_t prefix = 8 + len_bytes;
  if (bytes.size() < prefix) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": truncated .npy preamble"));
  }
  size_t header_len = ReadLe(bytes, 8, len_bytes);
  if (header_len > bytes.size() - prefix) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": .npy header length ", header_len, " exceeds the file size ",
        bytes.size()));
  }
  ASSIGN_OR_RETURN(NpyHeader h,
                   HeaderParser(bytes.substr(prefix, header_len), what).Parse());
  std::optional<DataType> dtype = DescrToDataType(*h.descr);
  if (!dtype) {
    return absl::UnimplementedError(absl::StrCat(
        what, ": unsupported .npy dtype '", *h.descr,
        "' (supported: <f4 <f8 |u1 |i1 <i4 <i8 |b1)"));
  }
  if (*h.fortran_order) {
    return absl::UnimplementedError(absl::StrCat(
        what, ": fortran_order True .npy files are not supported; save a "
              "C-contiguous array (numpy.ascontiguousarray)"));
  }
  // Compute the data size with overflow checks before trusting the shape.
  const Shape& shape = *h.shape;
  const uint64_t item = DataTypeSize(*dtype);
  const uint64_t available = bytes.size() - prefix - header_len;
  uint64_t count = 1;
  bool zero = false;
  for (int64_t d : shape) zero |= (d == 0);
  if (!zero) {
    for (int64_t d : shape) {
      if (count > available / static_cast<uint64_t>(d)) {
        return absl::InvalidArgumentError(absl::StrCat(
            what, ": .npy shape ", ShapeToString(shape), " needs more data than the ",
            available, " bytes in the file"));
      }
      count *= static_cast<uint64_t>(d);
    }
  } else {
    count = 0;
  }
  const uint64_t expected = count * item;
  if (expected != available) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": .npy data section has ", available, " bytes but shape ",
        ShapeToString(shape), " of ", DataTypeName(*dtype), " expects ", expected,
        " bytes", available < expected ? " (file truncated)" : " (trailing bytes)"));
  }
  Tensor t(*dtype, shape);
  const char* src = bytes.data() + prefix + header_len;
  CopyRawBytes(src, expected, t);  // normalizes bool bytes to 0/1
  return t;
}

absl::StatusOr<Tensor> ReadNpy(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open '", path, "'"));
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) {
    return absl::DataLossError(absl::StrCat("error reading '", path, "'"));
  }
  return ReadNpyBytes(buffer.str(), absl::StrCat("'", path, "'"));
}

absl::Status WriteNpy(const std::string& path, const Tensor& t) {
  const char* descr = DataTypeToDescr(t.dtype());
  if (descr == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot write '", path, "': tensor has no data type"));
  }
  std::string shape = "(";
  for (size_t i = 0; i < t.shape().size(); ++i) {
    if (i) shape += ", ";
    shape += std::to_string(t.shape()[i]);
  }
  if (t.shape().size() == 1) shape += ",";  // Python's 1-tuple syntax.
  shape += ")";
  std::string header = absl::StrCat("{'descr': '", descr,
                                    "', 'fortran_order': False, 'shape': ", shape,
                                    ", }");
  // Pad with spaces so 10-byte preamble + header + '\n' is a multiple of 64.
  size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  if (header.size() > std::numeric_limits<uint16_t>::max()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot write '", path, "': .npy header too long"));
  }
  std::string out(kMagic, kMagicLen);
  out += '\x01';
  out += '\x00';
  out += static_cast<char>(header.size() & 0xff);
  out += static_cast<char>(header.size() >> 8);
  out += header;
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) return absl::PermissionDeniedError(absl::StrCat("cannot create '", path, "'"));
  f.write(out.data(), static_cast<std::streamsize>(out.size()));
  if (t.byte_size() > 0) {
    f.write(static_cast<const char*>(t.raw_data()),
            static_cast<std::streamsize>(t.byte_size()));
  }
  f.close();
  if (!f) return absl::DataLossError(absl::StrCat("error writing '", path, "'"));
  return absl::OkStatus();
}

}  // namespace qs
