// Unit tests of the model store: SHA-256 vectors (FIPS 180-4 / NIST examples), names, manifest
// round trip, atomic writes, admission / tag / rm reference counting, snapshots and listeners.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "base/error.h"
#include "fixtures.h"
#include "store/fs.h"
#include "store/manifest.h"
#include "store/names.h"
#include "store/pull.h"
#include "store/sha256.h"
#include "store/store.h"

namespace lightboat::store {
namespace {

namespace fs = std::filesystem;

// A fresh directory under the test temp dir, removed at the end.
struct TempDir {
  fs::path path;
  TempDir() {
    path =
        fs::temp_directory_path() / ("lb-store-test-" + std::to_string(::getpid()) + "-" + std::to_string(counter()++));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  static int& counter() {
    static int n = 0;
    return n;
  }
};

TEST(StoreSha256, StandardVectors) {
  Sha256 h;
  EXPECT_EQ(h.hex_final(), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");  // ""
  h.update("abc");
  EXPECT_EQ(h.hex_final(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  h.update("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq");
  EXPECT_EQ(h.hex_final(), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  // One million 'a', fed in uneven pieces.
  std::string a(999'999, 'a');
  h.update(std::string_view(a).substr(0, 12345));
  h.update(std::string_view(a).substr(12345));
  h.update("a");
  EXPECT_EQ(h.hex_final(), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST(StoreSha256, FileAndHexCheck) {
  TempDir d;
  const std::string p = (d.path / "f").string();
  std::ofstream(p) << "abc";
  EXPECT_EQ(sha256_file(p), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_THROW(sha256_file((d.path / "missing").string()), Error);
  EXPECT_TRUE(is_sha256_hex(std::string(64, 'A')));
  EXPECT_FALSE(is_sha256_hex(std::string(63, 'a')));
  EXPECT_FALSE(is_sha256_hex(std::string(63, 'a') + "g"));
}

TEST(StoreNames, Parse) {
  EXPECT_EQ(parse_ref("llama3.2:1b-q4"), (ModelRef{"llama3.2", "1b-q4"}));
  EXPECT_EQ(parse_ref("stories"), (ModelRef{"stories", "latest"}));
  for (const char* bad : {"", ":x", "x:", "Foo", "a/b", "-x", "x:_y", "a:b:c", "x y", "./m.gguf"}) {
    EXPECT_FALSE(try_parse_ref(bad).has_value()) << bad;
  }
  EXPECT_THROW(parse_ref("Bad/Name"), Error);
  EXPECT_FALSE(try_parse_ref(std::string(129, 'a')).has_value());
}

TEST(StoreNames, DefaultForFile) {
  EXPECT_EQ(default_ref_for_file("tiny-llama-Q4_K_M.gguf").str(), "tiny-llama:q4_k_m");
  EXPECT_EQ(default_ref_for_file("stories260K-F32.gguf").str(), "stories260k:f32");
  EXPECT_EQ(default_ref_for_file("Qwen2.5-0.5B-Instruct.IQ2_XS.gguf").str(), "qwen2.5-0.5b-instruct:iq2_xs");
  EXPECT_EQ(default_ref_for_file("model.gguf").str(), "model:latest");
  EXPECT_EQ(default_ref_for_file("my model (v2).gguf").str(), "my-model--v2-:latest");
  EXPECT_EQ(default_ref_for_file("").str(), "model:latest");
  EXPECT_TRUE(try_parse_ref(default_ref_for_file("__weird__.gguf").str()).has_value());
}

TEST(StoreNames, SourceUrl) {
  EXPECT_EQ(source_url("hf:org/repo/file-Q4_0.gguf"), "https://huggingface.co/org/repo/resolve/main/file-Q4_0.gguf");
  EXPECT_EQ(source_url("hf:org/repo/sub/dir/f.gguf"), "https://huggingface.co/org/repo/resolve/main/sub/dir/f.gguf");
  EXPECT_EQ(source_url("http://127.0.0.1:8/x.gguf"), "http://127.0.0.1:8/x.gguf");
  for (const char* bad : {"hf:org/repo", "hf:/repo/f", "hf:org//f", "ftp://x/y", "x.gguf"}) {
    EXPECT_THROW(source_url(bad), Error) << bad;
  }
  EXPECT_EQ(url_file_name("https://h/a/b/c-Q8_0.gguf?download=true#x"), "c-Q8_0.gguf");
  EXPECT_EQ(url_file_name("https://h"), "");
}

TEST(StoreManifest, RoundTripAndErrors) {
  Manifest m{.ref = {"m", "q4_0"},
             .digest = "sha256:" + std::string(64, 'a'),
             .size = 12345,
             .architecture = "llama",
             .quantization = "Q4_0",
             .source = "http://x/m.gguf",
             .created = utc_now_iso()};
  const Manifest back = manifest_from_json(manifest_to_json(m), "test");
  EXPECT_EQ(back.ref, m.ref);
  EXPECT_EQ(back.digest, m.digest);
  EXPECT_EQ(back.size, m.size);
  EXPECT_EQ(back.architecture, m.architecture);
  EXPECT_EQ(back.quantization, m.quantization);
  EXPECT_EQ(back.source, m.source);
  EXPECT_EQ(back.created, m.created);
  EXPECT_EQ(back.hex(), std::string(64, 'a'));
  try {
    manifest_from_json(R"({"schema":1,"name":"m","tag":"t","digest":"md5:x"})", "where.json");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kFormat);
    EXPECT_NE(std::string(e.what()).find("where.json: 'digest'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(manifest_from_json("{not json", "w"), Error);
  EXPECT_EQ(format_size(862784), "842.6 KiB");
}

TEST(StoreFs, AtomicWriteReplacesAndLeavesNoTemp) {
  TempDir d;
  const std::string p = (d.path / "x.json").string();
  atomic_write_file(p, "one");
  atomic_write_file(p, "two");
  EXPECT_EQ(read_small_file(p), "two");
  int n = 0;
  for (const auto& e : fs::directory_iterator(d.path)) n += e.path().filename() != "x.json";
  EXPECT_EQ(n, 0);
  EXPECT_THROW(atomic_write_file((d.path / "no" / "dir.json").string(), "x"), Error);
}

TEST(StoreFs, LockExcludesSecondHolder) {
  TempDir d;
  const std::string p = (d.path / "lock").string();
  {
    FileLock a(p);
    FileLock b(p, true);  // another open file description: flock conflicts even in one process
    EXPECT_FALSE(b.held());
  }
  FileLock c(p, true);
  EXPECT_TRUE(c.held());
}

// A copy of a fixture GGUF inside the store's partial dir (same file system, as pull leaves it).
std::string staged_copy(const Store& st, const fs::path& src, const std::string& name) {
  make_dirs(st.partial_dir());
  const std::string dst = st.partial_dir() + "/" + name;
  fs::copy_file(src, dst, fs::copy_options::overwrite_existing);
  return dst;
}

TEST(Store, AdmitTagRemoveRefcounts) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  const fs::path q4 = lightboat::testing::fixtures_dir() / "arch" / "tiny-llama3-Q4_0.gguf";
  const fs::path q8 = lightboat::testing::fixtures_dir() / "arch" / "tiny-llama3-Q8_0.gguf";
  TempDir d;
  Store st(d.path.string());
  std::vector<TagChange> heard;
  st.on_change([&](const TagChange& c) { heard.push_back(c); });
  const Snapshot empty = st.snapshot();

  const std::string h4 = sha256_file(q4.string()), h8 = sha256_file(q8.string());
  const Manifest m = st.admit(staged_copy(st, q4, "a.part"), h4, {"tl", "q4"}, "http://x/q4.gguf");
  EXPECT_EQ(m.architecture, "llama");
  EXPECT_EQ(m.quantization, "Q4_0");
  EXPECT_EQ(m.size, fs::file_size(q4));
  EXPECT_TRUE(st.has_blob(h4));
  EXPECT_EQ(st.resolve({"tl", "q4"}).path, st.blob_path(h4));
  EXPECT_EQ(sha256_file(st.blob_path(h4)), h4);

  // Same bytes admitted under another name: one blob, the staged file is consumed.
  const std::string again = staged_copy(st, q4, "b.part");
  st.admit(again, h4, {"other", "latest"}, "http://y/q4.gguf");
  EXPECT_FALSE(fs::exists(again));
  st.tag({"tl", "q4"}, {"tl", "stable"});
  EXPECT_EQ(st.list().size(), 3u);

  // Removing two of three tags keeps the blob; the last one takes it.
  EXPECT_FALSE(st.remove({"other", "latest"}).blob_removed);
  EXPECT_FALSE(st.remove({"tl", "q4"}).blob_removed);
  EXPECT_TRUE(st.has_blob(h4));

  // Re-pointing the last tag to new content orphans (and removes) the old blob.
  const Snapshot before = st.snapshot();
  st.admit(staged_copy(st, q8, "c.part"), h8, {"tl", "stable"}, "http://x/q8.gguf");
  EXPECT_FALSE(st.has_blob(h4));
  EXPECT_TRUE(st.has_blob(h8));
  const std::vector<TagChange> changes = Store::diff(before, st.snapshot());
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0].ref.str(), "tl:stable");
  EXPECT_EQ(changes[0].before, "sha256:" + h4);
  EXPECT_EQ(changes[0].after, "sha256:" + h8);
  ASSERT_FALSE(heard.empty());
  EXPECT_EQ(heard.back().after, "sha256:" + h8);

  EXPECT_TRUE(st.remove({"tl", "stable"}).blob_removed);
  EXPECT_FALSE(st.has_blob(h8));
  EXPECT_EQ(st.snapshot(), empty);
  EXPECT_EQ(Store::diff(empty, st.snapshot()).size(), 0u);
  try {
    st.resolve({"tl", "stable"});
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kNotFound);
    EXPECT_NE(std::string(e.what()).find("lightboat pull"), std::string::npos);
  }
  EXPECT_THROW(st.remove({"tl", "stable"}), Error);
  EXPECT_THROW(st.tag({"nope", "x"}, {"y", "z"}), Error);
}

TEST(Store, CleanupRemovesOrphansAndTemps) {
  LIGHTBOAT_REQUIRE_FIXTURES();
  const fs::path q4 = lightboat::testing::fixtures_dir() / "arch" / "tiny-llama3-Q4_0.gguf";
  TempDir d;
  Store st(d.path.string());
  const std::string h4 = sha256_file(q4.string());
  st.admit(staged_copy(st, q4, "a.part"), h4, {"keep", "latest"}, "");
  // What a crash between the blob rename and the manifest write, or mid atomic write, leaves.
  fs::copy_file(q4, st.blob_path(std::string(64, 'b')));
  std::ofstream(st.manifest_path({"keep", "latest"}) + ".tmp-1-0") << "{";
  EXPECT_EQ(st.list().size(), 1u);  // the temp file is not a manifest
  EXPECT_EQ(st.cleanup(), 2);
  EXPECT_TRUE(st.has_blob(h4));
  EXPECT_FALSE(st.has_blob(std::string(64, 'b')));
}

TEST(Store, PullStatsAccumulateAndSurviveACorruptFile) {
  TempDir d;
  Store st(d.path.string());
  EXPECT_EQ(st.pull_stats().pulls, 0);
  st.record_pull(1000, true);
  st.record_pull(250, false);
  st.record_pull(4, true);
  PullStats p = st.pull_stats();
  EXPECT_EQ(p.pulls, 2);
  EXPECT_EQ(p.failures, 1);
  EXPECT_EQ(p.bytes, 1254);
  std::ofstream(d.path / "pull-stats.json") << "{not json";
  EXPECT_EQ(st.pull_stats().bytes, 0);  // unreadable: zeros, never an error
  st.record_pull(7, true);              // and counting starts again
  EXPECT_EQ(st.pull_stats().bytes, 7);
}

TEST(Store, RootFromEnvironment) {
  ::setenv("LIGHTBOAT_HOME", "/tmp/lb-home-test", 1);
  EXPECT_EQ(Store::default_root(), "/tmp/lb-home-test");
  ::unsetenv("LIGHTBOAT_HOME");
  ::setenv("HOME", "/home/u", 1);
  ::unsetenv("XDG_DATA_HOME");
  EXPECT_EQ(Store::default_root(), "/home/u/.local/share/lightboat");
}

TEST(StorePull, RejectsBadArguments) {
  TempDir d;
  Store st(d.path.string());
  EXPECT_THROW(pull(st, {.source = "ftp://x/y.gguf"}), Error);
  EXPECT_THROW(pull(st, {.source = "http://127.0.0.1:1/y.gguf", .sha256 = "zz"}), Error);
  EXPECT_EQ(partial_key("http://a"), partial_key("http://a"));
  EXPECT_NE(partial_key("http://a"), partial_key("http://b"));
}

}  // namespace
}  // namespace lightboat::store
