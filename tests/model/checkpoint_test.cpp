// parse_safetensors on hand-written file images: the valid layout, then one corruption per test, each of
// which must produce an error naming the file and (where there is one) the tensor.
#include <catch2/catch.hpp>

#include <cstring>
#include <string>
#include <vector>

#include "model/checkpoint.hpp"

using namespace rampart::model;

namespace {

// A safetensors image: little-endian header length, HEADER_JSON verbatim, then DATA.
std::string image(const std::string& header_json, const std::string& data, uint64_t declared_len = 0) {
  const uint64_t len = declared_len ? declared_len : header_json.size();
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((len >> (8 * i)) & 0xff);
  return out + header_json + data;
}

struct parsed {
  bool ok;
  std::vector<tensor_view> tensors;
  std::string error;
};

parsed parse(const std::string& bytes, const std::string& file = "dir/model.safetensors") {
  parsed p;
  load_error err;
  p.ok = parse_safetensors(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size(), file, &p.tensors,
                           &err);
  p.error = err.message;
  return p;
}

const std::string two_tensors =
    R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},)"
    R"("b":{"dtype":"BF16","shape":[3],"data_offsets":[16,22]}})";

}  // namespace

TEST_CASE("a valid image yields its tensors with dtype, shape and data pointers", "[safetensors]") {
  std::string data(22, '\0');
  const float one = 1.0f;
  std::memcpy(&data[4], &one, 4);
  const std::string bytes = image(two_tensors, data);
  const parsed p = parse(bytes);
  REQUIRE(p.ok);
  REQUIRE(p.tensors.size() == 2);
  const tensor_view& a = p.tensors[0];
  CHECK(a.name == "a");
  CHECK(a.type == dtype::f32);
  CHECK(a.shape == std::vector<int64_t>{2, 2});
  CHECK(a.nbytes == 16);
  CHECK(a.file == "dir/model.safetensors");
  CHECK(a.scale_inv == nullptr);
  CHECK(reinterpret_cast<const char*>(a.data) == bytes.data() + 8 + two_tensors.size());
  float second;
  std::memcpy(&second, a.data + 4, 4);
  CHECK(second == 1.0f);
  CHECK(p.tensors[1].type == dtype::bf16);
  CHECK(p.tensors[1].nbytes == 6);
  CHECK(reinterpret_cast<const char*>(p.tensors[1].data) == bytes.data() + 8 + two_tensors.size() + 16);
}

TEST_CASE("all four dtypes, scalars, empty tensors and space padding are accepted", "[safetensors]") {
  const std::string h =
      R"({"s":{"dtype":"F16","shape":[],"data_offsets":[0,2]},"e":{"dtype":"F32","shape":[0,4],"data_offsets":[2,2]},)"
      R"("q":{"dtype":"F8_E4M3","shape":[2,3],"data_offsets":[2,8]}}    )";
  const parsed p = parse(image(h, std::string(8, '\0')));
  REQUIRE(p.ok);
  REQUIRE(p.tensors.size() == 3);
  CHECK(p.tensors[0].nbytes == 2);
  CHECK(p.tensors[1].nbytes == 0);
  CHECK(p.tensors[2].type == dtype::f8_e4m3);
}

TEST_CASE("truncated tensor data is an error naming the file and tensor", "[safetensors]") {
  const parsed p = parse(image(two_tensors, std::string(20, '\0')));
  CHECK_FALSE(p.ok);
  CHECK(p.tensors.empty());
  CHECK_THAT(p.error, Catch::Contains("dir/model.safetensors") && Catch::Contains("'b'") &&
                          Catch::Contains("truncated"));
}

TEST_CASE("overlapping data_offsets are rejected", "[safetensors]") {
  const std::string h = R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                        R"("b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}})";
  const parsed p = parse(image(h, std::string(16, '\0')));
  CHECK_FALSE(p.ok);
  CHECK_THAT(p.error, Catch::Contains("dir/model.safetensors") && Catch::Contains("overlap") &&
                          Catch::Contains("'a'") && Catch::Contains("'b'"));
}

TEST_CASE("an overlap hidden behind an empty tensor is still found", "[safetensors]") {
  const std::string h = R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},)"
                        R"("z":{"dtype":"F32","shape":[0],"data_offsets":[4,4]},)"
                        R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})";
  const parsed p = parse(image(h, std::string(16, '\0')));
  CHECK_FALSE(p.ok);
  CHECK_THAT(p.error, Catch::Contains("overlap"));
}

TEST_CASE("a shape that disagrees with its byte range is rejected", "[safetensors]") {
  const std::string h = R"({"w":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}})";
  const parsed p = parse(image(h, std::string(16, '\0')));
  CHECK_FALSE(p.ok);
  CHECK_THAT(p.error, Catch::Contains("dir/model.safetensors") && Catch::Contains("'w'") &&
                          Catch::Contains("does not match"));
  // Dimensions whose product overflows 64 bits must not wrap around to a plausible size.
  const std::string huge = R"({"w":{"dtype":"F32","shape":[4294967296,4294967296,4],"data_offsets":[0,0]}})";
  CHECK_FALSE(parse(image(huge, "")).ok);
}

TEST_CASE("a header length that lies about the JSON size is rejected", "[safetensors]") {
  // Declared longer: the JSON swallows data bytes. Declared shorter: the JSON is cut off.
  const std::string data(22, 'x');
  const parsed longer = parse(image(two_tensors, data, two_tensors.size() + 6));
  CHECK_FALSE(longer.ok);
  CHECK_THAT(longer.error, Catch::Contains("dir/model.safetensors") && Catch::Contains("JSON"));
  const parsed shorter = parse(image(two_tensors, data, two_tensors.size() - 3));
  CHECK_FALSE(shorter.ok);
  CHECK_THAT(shorter.error, Catch::Contains("JSON"));
}

TEST_CASE("a header length past the end of the file is rejected", "[safetensors]") {
  const parsed p = parse(image(two_tensors, "", two_tensors.size() + 1000));
  CHECK_FALSE(p.ok);
  CHECK_THAT(p.error, Catch::Contains("dir/model.safetensors") && Catch::Contains("past the end"));
  const parsed huge = parse(image("{}", "", ~0ull));
  CHECK_FALSE(huge.ok);
  CHECK_THAT(huge.error, Catch::Contains("100 MiB"));
  CHECK_FALSE(parse(std::string(5, '\0')).ok);
  CHECK_FALSE(parse("").ok);
}

TEST_CASE("unknown dtypes are rejected by name", "[safetensors]") {
  for (const char* d : {"I64", "F8_E5M2", "f32", "F64"}) {
    const std::string h = std::string(R"({"t":{"dtype":")") + d + R"(","shape":[1],"data_offsets":[0,8]}})";
    const parsed p = parse(image(h, std::string(8, '\0')));
    CHECK_FALSE(p.ok);
    CHECK_THAT(p.error, Catch::Contains("'t'") && Catch::Contains(d) && Catch::Contains("dtype"));
  }
}

TEST_CASE("malformed header entries are rejected", "[safetensors]") {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"([1,2])", "not a JSON object"},
      {R"({"t":[1]})", "not an object"},
      {R"({"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", "non-negative"},
      {R"({"t":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}})", "non-negative"},
      {R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}})", "begin > end"},
      {R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0]}})", "data_offsets"},
      {R"({"t":{"dtype":"F32","shape":[1]}})", "data_offsets"},
      {R"({"t":{"shape":[1],"data_offsets":[0,4]}})", "dtype"},
      {R"({"t":{"dtype":"F32","data_offsets":[0,4]}})", "shape"},
      {R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4],"extra":1}})", "unknown header field"},
      {R"({"t":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"t":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})",
       "duplicate"},
      {R"({"__metadata__":{"format":1}})", "__metadata__"},
      {R"({"__metadata__":[]})", "__metadata__"},
  };
  for (const auto& [header, needle] : cases) {
    INFO(header);
    const parsed p = parse(image(header, std::string(8, '\0')));
    CHECK_FALSE(p.ok);
    CHECK_THAT(p.error, Catch::Contains("dir/model.safetensors") && Catch::Contains(needle));
  }
}
