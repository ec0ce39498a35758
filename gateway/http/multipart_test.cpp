#include "http/multipart.h"

#include <gtest/gtest.h>

#include <random>
#include <stdexcept>
#include <vector>

namespace mukaika::http {
namespace {

struct Part {
  PartHeaders headers;
  std::string data;
  bool ended = false;
};

class Recorder : public MultipartHandler {
 public:
  std::vector<Part> parts;
  void on_part_begin(const PartHeaders& h) override {
    if (!parts.empty()) {
      EXPECT_TRUE(parts.back().ended) << "begin before the previous part ended";
    }
    parts.push_back({h, {}, false});
  }
  void on_part_data(std::string_view bytes) override {
    ASSERT_FALSE(parts.empty());
    ASSERT_FALSE(parts.back().ended);
    EXPECT_FALSE(bytes.empty());
    parts.back().data.append(bytes);
  }
  void on_part_end() override {
    ASSERT_FALSE(parts.empty());
    parts.back().ended = true;
  }
};

constexpr std::string_view kBoundary = "----WebKitFormBoundary7MA4YWxkTrZu0gW";

std::string two_part_body() {
  return "preamble, ignored\r\n"
         "------WebKitFormBoundary7MA4YWxkTrZu0gW\r\n"
         "Content-Disposition: form-data; name=\"comment\"\r\n"
         "\r\n"
         "見積書を送ります\r\n"
         "------WebKitFormBoundary7MA4YWxkTrZu0gW\r\n"
         "Content-Disposition: form-data; name=\"file\"; filename=\"見積書①.pdf\"\r\n"
         "Content-Type: application/pdf\r\n"
         "\r\n"
         "%PDF-1.7\r\n\r\n--not the boundary\r\n--------WebKitFormBoundary7MA4\r\nend"
         "\r\n------WebKitFormBoundary7MA4YWxkTrZu0gW--\r\n"
         "epilogue, ignored";
}

void expect_two_parts(const Recorder& r) {
  ASSERT_EQ(r.parts.size(), 2u);
  EXPECT_EQ(r.parts[0].headers.name, "comment");
  EXPECT_FALSE(r.parts[0].headers.is_file());
  EXPECT_EQ(r.parts[0].headers.content_type, "");
  EXPECT_EQ(r.parts[0].data, "見積書を送ります");
  EXPECT_TRUE(r.parts[0].ended);
  EXPECT_EQ(r.parts[1].headers.name, "file");
  ASSERT_TRUE(r.parts[1].headers.filename);
  EXPECT_EQ(*r.parts[1].headers.filename, "見積書①.pdf");
  EXPECT_EQ(r.parts[1].headers.content_type, "application/pdf");
  EXPECT_EQ(r.parts[1].data, "%PDF-1.7\r\n\r\n--not the boundary\r\n--------WebKitFormBoundary7MA4\r\nend");
  EXPECT_TRUE(r.parts[1].ended);
}

struct Result {
  Recorder recorder;
  bool complete = false;
  MultipartError error = MultipartError::None;
};

Result parse(std::string_view body, std::size_t chunk = SIZE_MAX, MultipartParser::Limits limits = {},
             std::string_view boundary = kBoundary) {
  Result r;
  MultipartParser parser(boundary, r.recorder, limits);
  for (std::size_t i = 0; i < body.size(); i += chunk) parser.feed(body.substr(i, chunk));
  r.complete = parser.finish();
  r.error = parser.error();
  return r;
}

TEST(Multipart, TwoPartsInOneChunk) {
  auto r = parse(two_part_body());
  EXPECT_TRUE(r.complete);
  EXPECT_EQ(r.error, MultipartError::None);
  expect_two_parts(r.recorder);
}

TEST(Multipart, SplitAtEveryBytePosition) {
  const std::string body = two_part_body();
  for (std::size_t split = 0; split <= body.size(); ++split) {
    SCOPED_TRACE("split at " + std::to_string(split));
    Recorder rec;
    MultipartParser parser(kBoundary, rec);
    parser.feed(std::string_view(body).substr(0, split));
    parser.feed(std::string_view(body).substr(split));
    EXPECT_TRUE(parser.finish());
    expect_two_parts(rec);
  }
}

TEST(Multipart, OneByteAtATimeAndRandomChunks) {
  const std::string body = two_part_body();
  auto r = parse(body, 1);
  EXPECT_TRUE(r.complete);
  expect_two_parts(r.recorder);
  std::mt19937 rng(7);
  for (int round = 0; round < 200; ++round) {
    Recorder rec;
    MultipartParser parser(kBoundary, rec);
    for (std::size_t i = 0; i < body.size();) {
      std::size_t n = std::uniform_int_distribution<std::size_t>(1, 50)(rng);
      parser.feed(std::string_view(body).substr(i, n));
      i += n;
    }
    EXPECT_TRUE(parser.finish());
    expect_two_parts(rec);
  }
}

TEST(Multipart, BoundaryLikeStringsInsideData) {
  // "--boundary" without the CRLF before it, and a CRLF followed by a prefix
  // of the delimiter, are data.
  std::string data = "x--" + std::string(kBoundary) + "y\r\n--" + std::string(kBoundary.substr(0, 10)) + "\r\r\n\r\n-";
  std::string body = "--" + std::string(kBoundary) +
                     "\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.bin\"\r\n\r\n" + data + "\r\n--" +
                     std::string(kBoundary) + "--";
  for (std::size_t chunk : {std::size_t{1}, std::size_t{3}, std::size_t{7}, SIZE_MAX}) {
    auto r = parse(body, chunk);
    EXPECT_TRUE(r.complete);
    ASSERT_EQ(r.recorder.parts.size(), 1u);
    EXPECT_EQ(r.recorder.parts[0].data, data);
  }
}

TEST(Multipart, MegabyteFileOneByteAtATime) {
  std::string file(1 << 20, '\0');
  std::mt19937 rng(42);
  for (auto& c : file) c = static_cast<char>(rng());
  // Likely-looking traps: CRLFs and delimiter prefixes.
  for (std::size_t i = 1000; i + 64 < file.size(); i += 4099) {
    std::string trap = "\r\n--" + std::string(kBoundary.substr(0, i % kBoundary.size()));
    file.replace(i, trap.size(), trap);
  }
  std::string body = "--" + std::string(kBoundary) +
                     "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.bin\"\r\n"
                     "Content-Type: application/octet-stream\r\n\r\n" +
                     file + "\r\n--" + std::string(kBoundary) + "--\r\n";

  struct Counter : MultipartHandler {
    std::string data;
    int begins = 0, ends = 0;
    void on_part_begin(const PartHeaders&) override { ++begins; }
    void on_part_data(std::string_view b) override { data.append(b); }
    void on_part_end() override { ++ends; }
  } handler;
  MultipartParser parser(kBoundary, handler);
  for (char c : body) parser.feed(std::string_view(&c, 1));
  EXPECT_TRUE(parser.finish());
  EXPECT_EQ(handler.begins, 1);
  EXPECT_EQ(handler.ends, 1);
  EXPECT_TRUE(handler.data == file) << "file bytes differ";
}

TEST(Multipart, MissingClosingBoundaryIsNotComplete) {
  std::string body = two_part_body();
  body = body.substr(0, body.find("\r\n------WebKitFormBoundary7MA4YWxkTrZu0gW--"));
  auto r = parse(body);
  EXPECT_FALSE(r.complete);
  EXPECT_EQ(r.error, MultipartError::Truncated);
  ASSERT_EQ(r.recorder.parts.size(), 2u);
  EXPECT_TRUE(r.recorder.parts[0].ended);
  EXPECT_FALSE(r.recorder.parts[1].ended);  // the cut-off file never "ends"

  EXPECT_FALSE(parse("").complete);
  EXPECT_FALSE(parse("--" + std::string(kBoundary)).complete);
  EXPECT_FALSE(parse("--" + std::string(kBoundary) + "-").complete);
}

TEST(Multipart, ZeroPartsAndTransportPadding) {
  auto r = parse("--" + std::string(kBoundary) + "--");
  EXPECT_TRUE(r.complete);
  EXPECT_TRUE(r.recorder.parts.empty());

  r = parse("--" + std::string(kBoundary) + " \t\r\nContent-Disposition: form-data; name=a\r\n\r\nv\r\n--" +
            std::string(kBoundary) + "--");
  EXPECT_TRUE(r.complete);
  ASSERT_EQ(r.recorder.parts.size(), 1u);
  EXPECT_EQ(r.recorder.parts[0].data, "v");
}

TEST(Multipart, BareLfInHeadersIsAccepted) {
  auto r = parse("--" + std::string(kBoundary) + "\nContent-Disposition: form-data; name=a\n\nv\r\n--" +
                 std::string(kBoundary) + "--");
  EXPECT_TRUE(r.complete);
  ASSERT_EQ(r.recorder.parts.size(), 1u);
  EXPECT_EQ(r.recorder.parts[0].data, "v");
}

TEST(Multipart, ReportsMalformedInputAndIgnoresTheRest) {
  const std::string open = "--" + std::string(kBoundary) + "\r\n";
  auto error_of = [](const std::string& body) { return parse(body + "\r\n\r\ndata").error; };
  EXPECT_EQ(error_of(open + "Content-Type: text/plain"), MultipartError::MissingContentDisposition);
  EXPECT_EQ(error_of(open + "Content-Disposition: attachment; name=a"), MultipartError::NotFormData);
  EXPECT_EQ(error_of(open + "Content-Disposition: form-data; filename=a"), MultipartError::MissingName);
  EXPECT_EQ(error_of(open + "Content-Disposition: form-data; name=\"a"), MultipartError::MalformedHeader);
  EXPECT_EQ(error_of(open + "Content-Disposition form-data"), MultipartError::MalformedHeader);
  EXPECT_EQ(error_of(open + "Content-Disposition: form-data; name=a; name=b"), MultipartError::DuplicateHeader);
  EXPECT_EQ(error_of(open + "Content-Disposition: form-data; name=a\r\nContent-Disposition: form-data; name=b"),
            MultipartError::DuplicateHeader);
  EXPECT_EQ(parse("--" + std::string(kBoundary) + "x\r\n").error, MultipartError::MalformedBoundaryLine);
  EXPECT_EQ(parse("x", SIZE_MAX, {}, "").error, MultipartError::BadBoundary);
  EXPECT_EQ(parse("x", SIZE_MAX, {}, std::string(71, 'a')).error, MultipartError::BadBoundary);

  Recorder rec;
  MultipartParser parser(kBoundary, rec);
  parser.feed(open + "Content-Type: x\r\n\r\n");
  EXPECT_TRUE(parser.failed());
  parser.feed(open + "Content-Disposition: form-data; name=a\r\n\r\nv\r\n--" + std::string(kBoundary) + "--");
  EXPECT_FALSE(parser.finish());
  EXPECT_TRUE(rec.parts.empty());
  EXPECT_EQ(parser.error(), MultipartError::MissingContentDisposition);
  EXPECT_FALSE(error_text(parser.error()).en.empty());
  EXPECT_FALSE(error_text(parser.error()).ja.empty());
}

TEST(Multipart, Limits) {
  const std::string b(kBoundary);
  auto part = [&](const std::string& headers, const std::string& data) {
    return "--" + b + "\r\n" + headers + "\r\n\r\n" + data + "\r\n";
  };
  const std::string field = "Content-Disposition: form-data; name=f";
  const std::string file = "Content-Disposition: form-data; name=f; filename=x";

  MultipartParser::Limits limits;
  limits.max_parts = 2;
  EXPECT_TRUE(parse(part(field, "1") + part(field, "2") + "--" + b + "--", 1, limits).complete);
  EXPECT_EQ(parse(part(field, "1") + part(field, "2") + part(field, "3") + "--" + b + "--", 1, limits).error,
            MultipartError::TooManyParts);

  limits = {};
  limits.max_header_bytes = 100;
  EXPECT_EQ(parse(part(field + "; x=\"" + std::string(200, 'x') + "\"", "1"), 1, limits).error,
            MultipartError::HeaderTooLarge);
  // Without any line end the limit still holds: nothing grows unbounded.
  EXPECT_EQ(parse("--" + b + "\r\n" + std::string(10000, 'x'), SIZE_MAX, limits).error,
            MultipartError::HeaderTooLarge);
  EXPECT_EQ(parse("--" + b + std::string(10000, ' '), SIZE_MAX, limits).error, MultipartError::HeaderTooLarge);

  limits = {};
  limits.max_header_lines = 3;
  EXPECT_EQ(parse(part(field + "\r\nX-A: 1\r\nX-B: 2\r\nX-C: 3", "1"), 1, limits).error,
            MultipartError::TooManyHeaderLines);

  limits = {};
  limits.max_field_bytes = 10;
  EXPECT_TRUE(parse(part(field, "12345") + part(field, "67890") + "--" + b + "--", 1, limits).complete);
  EXPECT_EQ(parse(part(field, "12345") + part(field, "678901") + "--" + b + "--", 1, limits).error,
            MultipartError::FieldsTooLarge);
  // Files do not count toward the field limit.
  EXPECT_TRUE(parse(part(file, std::string(1000, 'z')) + "--" + b + "--", 7, limits).complete);
}

TEST(Multipart, FilenameParameters) {
  auto headers_of = [](const std::string& disposition) {
    auto r = parse("--" + std::string(kBoundary) + "\r\nContent-Disposition: " + disposition + "\r\n\r\nv\r\n--" +
                   std::string(kBoundary) + "--");
    EXPECT_TRUE(r.complete) << disposition;
    return r.recorder.parts.empty() ? PartHeaders{} : r.recorder.parts[0].headers;
  };
  // RFC 5987 wins over the plain parameter.
  auto h = headers_of("form-data; name=\"file\"; filename=\"fallback.pdf\"; "
                      "filename*=UTF-8''%E8%A6%8B%E7%A9%8D%E6%9B%B8%E2%91%A0.pdf");
  EXPECT_EQ(h.filename.value_or("-"), "見積書①.pdf");
  h = headers_of("form-data; name=f; filename*=iso-8859-1'en'caf%E9.txt");
  EXPECT_EQ(h.filename.value_or("-"), "café.txt");
  // Backslash escapes in quoted strings; case-insensitive names.
  h = headers_of("FORM-DATA; NAME=\"a\\\"b\"; FileName=\"x\\\\y.txt\"");
  EXPECT_EQ(h.name, "a\"b");
  EXPECT_EQ(h.filename.value_or("-"), "x\\y.txt");
  // An empty filename: a file input with nothing chosen.
  h = headers_of("form-data; name=f; filename=\"\"");
  EXPECT_TRUE(h.is_file());
  EXPECT_EQ(h.filename.value_or("-"), "");

  EXPECT_EQ(parse("--" + std::string(kBoundary) +
                  "\r\nContent-Disposition: form-data; name=f; filename*=UTF-8''%E8%A\r\n\r\n")
                .error,
            MultipartError::MalformedHeader);
}

TEST(Multipart, ThrowingHandlerFailsTheParser) {
  struct Thrower : MultipartHandler {
    void on_part_begin(const PartHeaders&) override {}
    void on_part_data(std::string_view) override { throw std::runtime_error("disk full"); }
    void on_part_end() override {}
  } handler;
  MultipartParser parser(kBoundary, handler);
  EXPECT_THROW(parser.feed(two_part_body()), std::runtime_error);
  EXPECT_EQ(parser.error(), MultipartError::HandlerFailed);
  parser.feed("more");
  EXPECT_FALSE(parser.finish());
}

TEST(Multipart, SurvivesRandomInput) {
  std::mt19937 rng(1);
  const std::string body = two_part_body();
  for (int round = 0; round < 2000; ++round) {
    std::string mutated = body;
    int edits = std::uniform_int_distribution<int>(1, 8)(rng);
    for (int e = 0; e < edits; ++e) {
      std::size_t at = std::uniform_int_distribution<std::size_t>(0, mutated.size() - 1)(rng);
      mutated[at] = "\r\n-:;\"\\=ab\0"[rng() % 11];
    }
    Recorder rec;
    MultipartParser parser(kBoundary, rec);
    for (std::size_t i = 0; i < mutated.size(); i += 5) parser.feed(std::string_view(mutated).substr(i, 5));
    parser.finish();
  }
}

TEST(BoundaryFromContentType, QuotedUnquotedAndCase) {
  EXPECT_EQ(boundary_from_content_type("multipart/form-data; boundary=abc123").value_or("-"), "abc123");
  EXPECT_EQ(boundary_from_content_type("Multipart/Form-Data;BOUNDARY=\"a b:c\"").value_or("-"), "a b:c");
  EXPECT_EQ(boundary_from_content_type("multipart/form-data; charset=utf-8; boundary=\"x\" ").value_or("-"), "x");
  EXPECT_FALSE(boundary_from_content_type("multipart/mixed; boundary=abc"));
  EXPECT_FALSE(boundary_from_content_type("multipart/form-data"));
  EXPECT_FALSE(boundary_from_content_type("multipart/form-data; boundary="));
  EXPECT_FALSE(boundary_from_content_type("multipart/form-data; boundary=\"abc"));
  EXPECT_FALSE(boundary_from_content_type("multipart/form-data; boundary=a; boundary=b"));
  EXPECT_FALSE(boundary_from_content_type("multipart/form-data; boundary=" + std::string(71, 'a')));
  EXPECT_FALSE(boundary_from_content_type("multipart/form-data; boundary=\"a\r\nb\""));
}

TEST(SafeUploadName, HostileNames) {
  EXPECT_EQ(safe_upload_name("../../etc/passwd"), "passwd");
  EXPECT_EQ(safe_upload_name("C:\\x\\evil.exe"), "evil.exe");
  EXPECT_EQ(safe_upload_name(std::string("a\0b", 3)), "a_b");
  EXPECT_EQ(safe_upload_name("invoice\u202E" "fdp.exe"), "invoicefdp.exe");
  EXPECT_EQ(safe_upload_name("a\u2066b\u2069.txt"), "ab.txt");
  EXPECT_EQ(safe_upload_name("見積書①.pdf"), "見積書①.pdf");
  EXPECT_EQ(safe_upload_name(" ..secret. . "), "secret");
  EXPECT_EQ(safe_upload_name("bad\xFFutf8.txt"), "bad\uFFFDutf8.txt");
  EXPECT_EQ(safe_upload_name(""), "file");
  EXPECT_EQ(safe_upload_name("dir/"), "file");
  EXPECT_EQ(safe_upload_name("..."), "file");
}

TEST(SafeUploadName, LimitedTo255BytesAtACharacterBoundary) {
  std::string name;
  for (int i = 0; i < 100; ++i) name += "見";  // 300 bytes
  name += ".pdf";
  std::string safe = safe_upload_name(name);
  EXPECT_LE(safe.size(), 255u);
  EXPECT_TRUE(safe.ends_with(".pdf"));
  EXPECT_EQ((safe.size() - 4) % 3, 0u) << "cut inside a character";
  EXPECT_EQ(safe_upload_name(std::string(400, 'a')).size(), 255u);
}

TEST(ContentDisposition, JapaneseAndQuotes) {
  EXPECT_EQ(content_disposition_attachment("見積書①.pdf"),
            "attachment; filename=\"____.pdf\"; "
            "filename*=UTF-8''%E8%A6%8B%E7%A9%8D%E6%9B%B8%E2%91%A0.pdf");
  EXPECT_EQ(content_disposition_attachment("say \"hi\" \\ 100%.txt"),
            "attachment; filename=\"say _hi_ _ 100_.txt\"; "
            "filename*=UTF-8''say%20%22hi%22%20%5C%20100%25.txt");
  EXPECT_EQ(content_disposition_attachment(""), "attachment; filename=\"file\"; filename*=UTF-8''file");
}

}  // namespace
}  // namespace mukaika::http
