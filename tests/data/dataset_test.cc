#include "engine/data/dataset.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "engine/data/npy.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qs {
namespace {

using ::testing::HasSubstr;

class DatasetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::temp_directory_path() /
           ("qs_dataset_test_" + std::to_string(getpid()) + "_" + info->name());
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // Plain uint8 IDX file with the given dims and bytes.
  std::string WriteIdxU8(const std::string& name, const std::vector<uint32_t>& dims,
                         const std::vector<uint8_t>& data) {
    std::string b = {'\0', '\0', '\x08', static_cast<char>(dims.size())};
    for (uint32_t d : dims) {
      for (int s = 24; s >= 0; s -= 8) b += static_cast<char>((d >> s) & 0xff);
    }
    b.append(data.begin(), data.end());
    std::string path = (dir_ / name).string();
    std::ofstream(path, std::ios::binary).write(b.data(), static_cast<std::streamsize>(b.size()));
    return path;
  }
  std::string WriteNpyFile(const std::string& name, const Tensor& t) {
    std::string path = (dir_ / name).string();
    EXPECT_TRUE(WriteNpy(path, t).ok());
    return path;
  }
  // 4 images of 2x2 with pixel values 0..15, labels 3,1,4,1.
  DatasetSpec IdxSpec() {
    std::vector<uint8_t> px(16);
    for (int i = 0; i < 16; ++i) px[i] = static_cast<uint8_t>(i * 17);  // 0..255
    DatasetSpec spec;
    spec.inputs = WriteIdxU8("img.idx", {4, 2, 2}, px);
    spec.labels = WriteIdxU8("lab.idx", {4}, {3, 1, 4, 1});
    return spec;
  }

  std::filesystem::path dir_;
};

TEST_F(DatasetTest, IdxDefaultScaling) {
  auto ds = LoadDataset(IdxSpec(), {});
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_EQ(ds->size(), 4);
  EXPECT_EQ(ds->inputs.dtype(), DataType::kFloat32);
  EXPECT_EQ(ds->inputs.shape(), (Shape{4, 2, 2}));
  EXPECT_FLOAT_EQ(ds->inputs.data<float>()[0], 0.0f);
  EXPECT_FLOAT_EQ(ds->inputs.data<float>()[1], 17.0f / 255.0f);
  EXPECT_FLOAT_EQ(ds->inputs.data<float>()[15], 1.0f);
  ASSERT_EQ(ds->labels.dtype(), DataType::kInt64);
  ASSERT_EQ(ds->labels.shape(), (Shape{4}));
  EXPECT_EQ(ds->labels.data<int64_t>()[0], 3);
  EXPECT_EQ(ds->labels.data<int64_t>()[2], 4);
}

TEST_F(DatasetTest, CustomScaleOffsetAndLimit) {
  DatasetSpec spec = IdxSpec();
  spec.scale = 2.0f;
  spec.offset = -1.0f;
  spec.limit = 2;
  auto ds = LoadDataset(spec, {});
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_EQ(ds->size(), 2);
  EXPECT_EQ(ds->inputs.shape(), (Shape{2, 2, 2}));
  EXPECT_EQ(ds->labels.shape(), (Shape{2}));
  EXPECT_FLOAT_EQ(ds->inputs.data<float>()[0], -1.0f);
  EXPECT_FLOAT_EQ(ds->inputs.data<float>()[7], 7 * 17 * 2.0f - 1.0f);
  EXPECT_EQ(ds->labels.data<int64_t>()[1], 1);

  spec.limit = 100;  // more than available: all samples
  ds = LoadDataset(spec, {});
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_EQ(ds->size(), 4);
  spec.limit = -1;
  EXPECT_EQ(LoadDataset(spec, {}).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(DatasetTest, ReshapesToSampleShape) {
  auto ds = LoadDataset(IdxSpec(), {1, 4});
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_EQ(ds->inputs.shape(), (Shape{4, 1, 4}));
  Tensor b = ds->Batch(1, 2);
  EXPECT_EQ(b.dtype(), DataType::kFloat32);
  EXPECT_EQ(b.shape(), (Shape{2, 1, 4}));
  EXPECT_FLOAT_EQ(b.data<float>()[0], 4 * 17 / 255.0f);
  EXPECT_FLOAT_EQ(b.data<float>()[7], 11 * 17 / 255.0f);
  // Batch is a copy, not a view.
  EXPECT_NE(b.data<float>(), ds->inputs.data<float>() + 4);
  // Clamped at the end of the dataset.
  EXPECT_EQ(ds->Batch(3, 10).shape(), (Shape{1, 1, 4}));
  EXPECT_EQ(ds->Batch(9, 1).shape(), (Shape{0, 1, 4}));
}

TEST_F(DatasetTest, SampleShapeMismatchNamesBothShapes) {
  auto ds = LoadDataset(IdxSpec(), {1, 28, 28});
  EXPECT_EQ(ds.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ds.status().message(), HasSubstr("[2,2]"));
  EXPECT_THAT(ds.status().message(), HasSubstr("[1,28,28]"));
}

TEST_F(DatasetTest, LabelCountMismatchRejected) {
  DatasetSpec spec = IdxSpec();
  spec.labels = WriteIdxU8("lab3.idx", {3}, {1, 2, 3});
  auto ds = LoadDataset(spec, {});
  EXPECT_EQ(ds.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ds.status().message(), HasSubstr("3 entries"));
  EXPECT_THAT(ds.status().message(), HasSubstr("4 samples"));
}

TEST_F(DatasetTest, UnlabeledNpyFloatUsedAsIs) {
  DatasetSpec spec;
  spec.format = DatasetSpec::Format::kNpy;
  spec.inputs = WriteNpyFile("x.npy", Tensor::FromVector<double>({2, 3}, {0.5, -2, 3, 4, 5, 6}));
  auto ds = LoadDataset(spec, {3});
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_TRUE(ds->labels.empty());
  EXPECT_EQ(ds->inputs.dtype(), DataType::kFloat32);
  EXPECT_EQ(ds->inputs.shape(), (Shape{2, 3}));
  EXPECT_FLOAT_EQ(ds->inputs.data<float>()[0], 0.5f);
  EXPECT_FLOAT_EQ(ds->inputs.data<float>()[1], -2.0f);

  spec.apply_scale_to_float = true;
  spec.scale = 10.0f;
  spec.offset = 1.0f;
  ds = LoadDataset(spec, {});
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_FLOAT_EQ(ds->inputs.data<float>()[0], 6.0f);
  EXPECT_FLOAT_EQ(ds->inputs.data<float>()[5], 61.0f);
}

TEST_F(DatasetTest, NpyIntegerInputsScaledAndLabels) {
  DatasetSpec spec;
  spec.format = DatasetSpec::Format::kNpy;
  spec.inputs = WriteNpyFile("x.npy", Tensor::FromVector<int32_t>({3, 1}, {-10, 0, 20}));
  spec.labels = WriteNpyFile("y.npy", Tensor::FromVector<int64_t>({3, 1}, {7, 0, 123456789012}));
  spec.scale = 0.5f;
  auto ds = LoadDataset(spec, {});
  ASSERT_TRUE(ds.ok()) << ds.status();
  EXPECT_FLOAT_EQ(ds->inputs.data<float>()[0], -5.0f);
  EXPECT_FLOAT_EQ(ds->inputs.data<float>()[2], 10.0f);
  ASSERT_EQ(ds->labels.shape(), (Shape{3}));
  EXPECT_EQ(ds->labels.data<int64_t>()[2], 123456789012);
}

TEST_F(DatasetTest, BadLabelsRejected) {
  DatasetSpec spec;
  spec.format = DatasetSpec::Format::kNpy;
  spec.inputs = WriteNpyFile("x.npy", Tensor(DataType::kUint8, {3, 2}));
  spec.labels = WriteNpyFile("f.npy", Tensor::FromVector<float>({3}, {1, 2, 3}));
  auto ds = LoadDataset(spec, {});
  EXPECT_EQ(ds.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ds.status().message(), HasSubstr("must be integers"));

  spec.labels = WriteNpyFile("n.npy", Tensor::FromVector<int8_t>({3}, {0, 2, -1}));
  ds = LoadDataset(spec, {});
  EXPECT_EQ(ds.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ds.status().message(), HasSubstr("entry 2 is negative"));

  spec.labels = WriteNpyFile("m.npy", Tensor(DataType::kInt32, {3, 2}));
  EXPECT_THAT(LoadDataset(spec, {}).status().message(), HasSubstr("[N] or [N,1]"));
}

TEST_F(DatasetTest, MissingOrScalarInputsRejected) {
  DatasetSpec spec;
  spec.inputs = (dir_ / "none.gz").string();
  EXPECT_EQ(LoadDataset(spec, {}).status().code(), absl::StatusCode::kNotFound);
  spec.format = DatasetSpec::Format::kNpy;
  spec.inputs = WriteNpyFile("s.npy", Tensor::FromVector<float>({}, {1.0f}));
  EXPECT_THAT(LoadDataset(spec, {}).status().message(), HasSubstr("leading sample dim"));
}

}  // namespace
}  // namespace qs
