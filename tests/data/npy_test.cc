#include "engine/data/npy.h"

#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qs {
namespace {

using ::testing::HasSubstr;

class NpyTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           ("qs_npy_test_" + std::to_string(getpid()) + "_" + info->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Path(const std::string& name) const { return (dir_ / name).string(); }
  void WriteRaw(const std::string& path, const std::string& bytes) {
    std::ofstream f(path, std::ios::binary);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  std::string ReadRaw(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
  }
  // A v1.0 file with a hand-written header (no padding) and raw data bytes.
  static std::string MakeNpy(const std::string& header, const std::string& data,
                             int major = 1) {
    std::string out("\x93NUMPY", 6);
    out += static_cast<char>(major);
    out += '\0';
    size_t len = header.size();
    int len_bytes = major == 1 ? 2 : 4;
    for (int i = 0; i < len_bytes; ++i) out += static_cast<char>((len >> (8 * i)) & 0xff);
    return out + header + data;
  }
  template <typename T>
  void RoundTrip(const Shape& shape, const std::vector<T>& values) {
    Tensor t = Tensor::FromVector<T>(shape, values);
    std::string path = Path("rt.npy");
    ASSERT_TRUE(WriteNpy(path, t).ok());
    auto r = ReadNpy(path);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->dtype(), DataTypeOf<T>());
    EXPECT_EQ(r->shape(), shape);
    ASSERT_EQ(r->num_elements(), static_cast<int64_t>(values.size()));
    for (size_t i = 0; i < values.size(); ++i) EXPECT_EQ(r->data<T>()[i], values[i]) << i;
  }

  std::filesystem::path dir_;
};

TEST_F(NpyTest, RoundTripFloat32) { RoundTrip<float>({2, 3}, {0.5f, -1.25f, 3e30f, 0, 7, -0.0f}); }
TEST_F(NpyTest, RoundTripFloat64) { RoundTrip<double>({3}, {1.0 / 3.0, -2.5e300, 42}); }
TEST_F(NpyTest, RoundTripUint8) { RoundTrip<uint8_t>({2, 2}, {0, 1, 128, 255}); }
TEST_F(NpyTest, RoundTripInt8) { RoundTrip<int8_t>({4}, {-128, -1, 0, 127}); }
TEST_F(NpyTest, RoundTripInt32) { RoundTrip<int32_t>({1, 3}, {-2147483647 - 1, 0, 2147483647}); }
TEST_F(NpyTest, RoundTripInt64) {
  RoundTrip<int64_t>({2, 1, 2}, {int64_t{1} << 40, -5, 0, INT64_MAX});
}
TEST_F(NpyTest, RoundTripBool) { RoundTrip<bool>({3}, {true, false, true}); }
TEST_F(NpyTest, RoundTripScalar) {
  Tensor t = Tensor::FromVector<float>({}, {6.5f});
  ASSERT_TRUE(WriteNpy(Path("s.npy"), t).ok());
  EXPECT_THAT(ReadRaw(Path("s.npy")), HasSubstr("'shape': ()"));
  auto r = ReadNpy(Path("s.npy"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->rank(), 0);
  EXPECT_EQ(r->num_elements(), 1);
  EXPECT_EQ(r->data<float>()[0], 6.5f);
}
TEST_F(NpyTest, RoundTripZeroSized) {
  ASSERT_TRUE(WriteNpy(Path("z.npy"), Tensor(DataType::kInt32, {0, 5})).ok());
  auto r = ReadNpy(Path("z.npy"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->shape(), (Shape{0, 5}));
}

TEST_F(NpyTest, WriterHeaderIsNumpyCompatible) {
  ASSERT_TRUE(WriteNpy(Path("h.npy"), Tensor::FromVector<float>({5}, {1, 2, 3, 4, 5})).ok());
  std::string b = ReadRaw(Path("h.npy"));
  ASSERT_GE(b.size(), 10u);
  EXPECT_EQ(b.substr(0, 8), std::string("\x93NUMPY\x01\x00", 8));
  size_t hl = static_cast<uint8_t>(b[8]) | (static_cast<uint8_t>(b[9]) << 8);
  EXPECT_EQ((10 + hl) % 64, 0u);
  EXPECT_EQ(b[10 + hl - 1], '\n');
  EXPECT_EQ(b.size(), 10 + hl + 5 * 4);
  EXPECT_EQ(b.substr(10, 50), "{'descr': '<f4', 'fortran_order': False, 'shape': ");
  EXPECT_THAT(b.substr(10, hl), HasSubstr("(5,)"));
}

TEST_F(NpyTest, HandWrittenHeaderWithReorderedKeys) {
  int32_t vals[6] = {1, -2, 3, -4, 5, 600000};
  std::string data(reinterpret_cast<const char*>(vals), sizeof(vals));
  WriteRaw(Path("r.npy"),
           MakeNpy("{ \"shape\" : ( 3 ,2 , ) ,'fortran_order':False,  'descr' :'<i4' , }\n",
                   data));
  auto r = ReadNpy(Path("r.npy"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->dtype(), DataType::kInt32);
  EXPECT_EQ(r->shape(), (Shape{3, 2}));
  EXPECT_EQ(r->data<int32_t>()[1], -2);
  EXPECT_EQ(r->data<int32_t>()[5], 600000);
}

TEST_F(NpyTest, Version2And3Headers) {
  double v = 2.75;
  std::string data(reinterpret_cast<const char*>(&v), sizeof(v));
  for (int major : {2, 3}) {
    auto r = ReadNpyBytes(
        MakeNpy("{'descr': '<f8', 'fortran_order': False, 'shape': (1,)}", data, major),
        "mem");
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->dtype(), DataType::kFloat64);
    EXPECT_EQ(r->data<double>()[0], 2.75);
  }
}

TEST_F(NpyTest, FortranOrderRejected) {
  std::string data(16, '\0');
  WriteRaw(Path("f.npy"),
           MakeNpy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }\n", data));
  auto r = ReadNpy(Path("f.npy"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(r.status().message(), HasSubstr("fortran_order"));
  EXPECT_THAT(r.status().message(), HasSubstr("f.npy"));
}

TEST_F(NpyTest, TruncatedDataRejected) {
  ASSERT_TRUE(WriteNpy(Path("t.npy"), Tensor(DataType::kFloat32, {2, 3})).ok());
  std::string b = ReadRaw(Path("t.npy"));
  WriteRaw(Path("t.npy"), b.substr(0, b.size() - 5));
  auto r = ReadNpy(Path("t.npy"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("has 19 bytes"));
  EXPECT_THAT(r.status().message(), HasSubstr("expects 24 bytes"));
  EXPECT_THAT(r.status().message(), HasSubstr("t.npy"));
}

TEST_F(NpyTest, TrailingDataRejected) {
  auto r = ReadNpyBytes(
      MakeNpy("{'descr': '|u1', 'fortran_order': False, 'shape': (2,)}", "abc"), "mem");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("trailing"));
}

TEST_F(NpyTest, HugeShapeRejectedWithoutAllocating) {
  auto r = ReadNpyBytes(
      MakeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (100000000000, 100000000000)}",
              "abcd"),
      "mem");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(NpyTest, GarbageRejected) {
  WriteRaw(Path("g.npy"), "this is not a numpy file at all");
  EXPECT_EQ(ReadNpy(Path("g.npy")).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReadNpyBytes("", "mem").status().code(), absl::StatusCode::kInvalidArgument);
  // Header length pointing past the end of the file.
  std::string b("\x93NUMPY\x01\x00\xff\xff{}", 12);
  EXPECT_THAT(ReadNpyBytes(b, "mem").status().message(), HasSubstr("exceeds the file size"));
  // Malformed dicts.
  for (const char* h : {"{'descr': '<f4', 'shape': (1,)}",  // missing key
                        "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,)}",
                        "{'descr': '<f4', 'fortran_order': False, 'shape': (1,)",
                        "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,)}",
                        "{'descr': '<f4', 'descr': '<f4', 'fortran_order': False, 'shape': ()}"}) {
    EXPECT_EQ(ReadNpyBytes(MakeNpy(h, std::string(4, '\0')), "mem").status().code(),
              absl::StatusCode::kInvalidArgument)
        << h;
  }
}

TEST_F(NpyTest, UnsupportedDtypeRejected) {
  for (const char* d : {"<f2", ">f4", "<c8", "|O"}) {
    std::string h = std::string("{'descr': '") + d + "', 'fortran_order': False, 'shape': (1,)}";
    auto r = ReadNpyBytes(MakeNpy(h, std::string(4, '\0')), "mem");
    EXPECT_EQ(r.status().code(), absl::StatusCode::kUnimplemented) << d;
    EXPECT_THAT(r.status().message(), HasSubstr(d));
  }
}

TEST_F(NpyTest, MissingFileIsNotFound) {
  EXPECT_EQ(ReadNpy(Path("nope.npy")).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace qs
