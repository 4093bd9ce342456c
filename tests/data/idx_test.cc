#include "engine/data/idx.h"

#include <unistd.h>
#include <zlib.h>

#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qs {
namespace {

using ::testing::HasSubstr;

// Big-endian IDX header: 00 00 type ndims, then uint32 dims.
std::string IdxHeader(uint8_t type, const std::vector<uint32_t>& dims) {
  std::string h = {'\0', '\0', static_cast<char>(type), static_cast<char>(dims.size())};
  for (uint32_t d : dims) {
    for (int s = 24; s >= 0; s -= 8) h += static_cast<char>((d >> s) & 0xff);
  }
  return h;
}

std::string Be32(uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8),
          static_cast<char>(v)};
}

class IdxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           ("qs_idx_test_" + std::to_string(getpid()) + "_" + info->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string WritePlain(const std::string& name, const std::string& bytes) {
    std::string path = (dir_ / name).string();
    std::ofstream f(path, std::ios::binary);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return path;
  }
  std::string WriteGz(const std::string& name, const std::string& bytes) {
    std::string path = (dir_ / name).string();
    gzFile f = gzopen(path.c_str(), "wb");
    EXPECT_NE(f, nullptr);
    EXPECT_EQ(gzwrite(f, bytes.data(), static_cast<unsigned>(bytes.size())),
              static_cast<int>(bytes.size()));
    EXPECT_EQ(gzclose(f), Z_OK);
    return path;
  }

  std::filesystem::path dir_;
};

TEST_F(IdxTest, ReadsGzipUint8) {
  std::string bytes = IdxHeader(0x08, {2, 3}) + std::string("\x00\x01\x7f\x80\xfe\xff", 6);
  std::string path = WriteGz("u8.idx.gz", bytes);
  // Make sure the fixture really is compressed (gzip magic 1f 8b).
  std::ifstream raw(path, std::ios::binary);
  std::array<char, 2> magic{};
  raw.read(magic.data(), 2);
  ASSERT_EQ(static_cast<uint8_t>(magic[0]), 0x1f);
  ASSERT_EQ(static_cast<uint8_t>(magic[1]), 0x8b);

  auto r = ReadIdx(path);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->dtype(), DataType::kUint8);
  EXPECT_EQ(r->shape(), (Shape{2, 3}));
  const uint8_t want[] = {0, 1, 127, 128, 254, 255};
  for (int i = 0; i < 6; ++i) EXPECT_EQ(r->data<uint8_t>()[i], want[i]) << i;
}

TEST_F(IdxTest, ReadsPlainInt8) {
  auto r = ReadIdx(WritePlain("i8.idx", IdxHeader(0x09, {3}) + std::string("\xff\x80\x05", 3)));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->dtype(), DataType::kInt8);
  EXPECT_EQ(r->shape(), (Shape{3}));
  EXPECT_EQ(r->data<int8_t>()[0], -1);
  EXPECT_EQ(r->data<int8_t>()[1], -128);
  EXPECT_EQ(r->data<int8_t>()[2], 5);
}

TEST_F(IdxTest, ConvertsBigEndianInt32AndFloat) {
  std::string ints = IdxHeader(0x0C, {2}) + Be32(0x01020304) + Be32(0xfffffffe);
  auto r = ReadIdx(WriteGz("i32.gz", ints));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->dtype(), DataType::kInt32);
  EXPECT_EQ(r->data<int32_t>()[0], 0x01020304);
  EXPECT_EQ(r->data<int32_t>()[1], -2);

  float f = -1.5f;
  uint32_t bits;
  std::memcpy(&bits, &f, 4);
  std::string floats = IdxHeader(0x0D, {1, 1, 1}) + Be32(bits);
  r = ReadIdx(WritePlain("f32.idx", floats));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->dtype(), DataType::kFloat32);
  EXPECT_EQ(r->shape(), (Shape{1, 1, 1}));
  EXPECT_EQ(r->data<float>()[0], -1.5f);
}

TEST_F(IdxTest, BadMagicRejected) {
  auto r = ReadIdx(WritePlain("bad.idx", std::string("\x01\x00\x08\x01\x00\x00\x00\x01\x05", 9)));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("magic"));
  EXPECT_THAT(r.status().message(), HasSubstr("bad.idx"));

  r = ReadIdx(WritePlain("type.idx", IdxHeader(0x07, {1}) + "x"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("data type"));

  r = ReadIdx(WritePlain("f64.idx", IdxHeader(0x0E, {1}) + std::string(8, '\0')));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnimplemented);

  r = ReadIdx(WritePlain("short.idx", std::string("\x00\x00", 2)));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(IdxTest, NdimsOutOfRangeRejected) {
  auto r = ReadIdx(WritePlain("n0.idx", IdxHeader(0x08, {})));
  EXPECT_THAT(r.status().message(), HasSubstr("ndims must be 1..8, found 0"));
  r = ReadIdx(WritePlain("n9.idx", IdxHeader(0x08, {1, 1, 1, 1, 1, 1, 1, 1, 1}) + "x"));
  EXPECT_THAT(r.status().message(), HasSubstr("found 9"));
  // Header claims 3 dims but the file ends after one.
  r = ReadIdx(WritePlain("dims.idx", std::string("\x00\x00\x08\x03\x00\x00\x00\x01", 8)));
  EXPECT_THAT(r.status().message(), HasSubstr("truncated IDX dimensions"));
}

TEST_F(IdxTest, TruncatedPayloadRejected) {
  std::string bytes = IdxHeader(0x08, {4, 5}) + std::string(19, 'a');
  for (const std::string& path : {WritePlain("t.idx", bytes), WriteGz("t.idx.gz", bytes)}) {
    auto r = ReadIdx(path);
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(r.status().message(), HasSubstr("need 20 bytes, found 19"));
  }
}

TEST_F(IdxTest, LongerPayloadRejected) {
  auto r = ReadIdx(WriteGz("l.gz", IdxHeader(0x0C, {2}) + std::string(9, 'a')));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("longer"));
}

TEST_F(IdxTest, CorruptGzipRejected) {
  std::string bytes = IdxHeader(0x08, {1000}) + std::string(1000, 'z');
  std::string path = WriteGz("c.gz", bytes);
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 12);
  EXPECT_EQ(ReadIdx(path).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(IdxTest, AbsurdDimsRejectedWithoutAllocating) {
  // 2^16 * 2^16 * 2^16 = 2^48 elements: refused outright.
  auto r = ReadIdx(WriteGz("huge.gz", IdxHeader(0x08, {65536, 65536, 65536})));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(r.status().message(), HasSubstr("2^33"));
  r = ReadIdx(WritePlain("huge32.idx", IdxHeader(0x0D, {0xffffffffu, 0xffffffffu})));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  // Exactly 2^33 uint8 elements (8 GiB) is within the limit, but the file is
  // tiny: this must fail as truncated instead of allocating 8 GiB first.
  r = ReadIdx(WriteGz("big.gz", IdxHeader(0x08, {0x80000000u, 4}) + "abc"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("need 8589934592 bytes, found 3"));
}

TEST_F(IdxTest, MissingFileIsNotFound) {
  auto r = ReadIdx((dir_ / "missing.gz").string());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(r.status().message(), HasSubstr("missing.gz"));
}

// The real Fashion-MNIST test set, when installed. The facts asserted here
// were checked against the file independently (first label 9 = ankle boot;
// 1000 images per class; first image pixel sum 33456).
TEST_F(IdxTest, FashionMnistTestSet) {
  const std::string dir = "/usr/share/datasets/fashion-mnist/";
  const std::string images = dir + "t10k-images-idx3-ubyte.gz";
  const std::string labels = dir + "t10k-labels-idx1-ubyte.gz";
  if (!std::filesystem::exists(images) || !std::filesystem::exists(labels)) {
    GTEST_SKIP() << "Fashion-MNIST not installed under " << dir;
  }
  auto img = ReadIdx(images);
  ASSERT_TRUE(img.ok()) << img.status();
  EXPECT_EQ(img->dtype(), DataType::kUint8);
  EXPECT_EQ(img->shape(), (Shape{10000, 28, 28}));
  int64_t sum = 0;
  for (int i = 0; i < 784; ++i) sum += img->data<uint8_t>()[i];
  EXPECT_EQ(sum, 33456);

  auto lab = ReadIdx(labels);
  ASSERT_TRUE(lab.ok()) << lab.status();
  EXPECT_EQ(lab->dtype(), DataType::kUint8);
  ASSERT_EQ(lab->shape(), (Shape{10000}));
  EXPECT_EQ(lab->data<uint8_t>()[0], 9);  // ankle boot
  std::array<int, 10> per_class{};
  for (uint8_t v : lab->values<uint8_t>()) {
    ASSERT_LE(v, 9);
    ++per_class[v];
  }
  for (int c = 0; c < 10; ++c) EXPECT_EQ(per_class[c], 1000) << c;
}

}  // namespace
}  // namespace qs
