// The pre-tokenizer against the worked splits and the tricky cases of shared/specs/tokenizer.md §3.2 and §8,
// each expectation written by hand from the spec.
#include <catch2/catch.hpp>

#include "tokenizer/tokenizer_pretokenizer.hpp"

using rampart::model::pretokenize;

namespace {

std::vector<std::string> pieces(const std::string& text) {
  std::vector<uint8_t> classes;
  std::vector<size_t> ends;
  pretokenize(text, &classes, &ends);
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t end : ends) {
    out.push_back(text.substr(start, end - start));
    start = end;
  }
  return out;
}

using list = std::vector<std::string>;

}  // namespace

TEST_CASE("pre-tokenizer reproduces the worked splits of spec section 3.2", "[tokenizer]") {
  CHECK(pieces("  hello") == list{" ", " hello"});
  CHECK(pieces("hello  ") == list{"hello", "  "});
  CHECK(pieces("a   b") == list{"a", "  ", " b"});
  CHECK(pieces("a\t\tb") == list{"a", "\t", "\tb"});
  CHECK(pieces("a  \n  b") == list{"a", "  \n", " ", " b"});
  CHECK(pieces("int main() {\n    return 0;\n}") ==
        list{"int", " main", "()", " {\n", "   ", " return", " ", "0", ";\n", "}"});
  CHECK(pieces("C++ & C#") == list{"C", "++", " &", " C", "#"});
  CHECK(pieces("¿Qué?") == list{"¿", "Qué", "?"});
  CHECK(pieces("e.g.") == list{"e", ".g", "."});
  CHECK(pieces("__init__") == list{"__", "init", "__"});
  CHECK(pieces("don't") == list{"don", "'t"});
  CHECK(pieces("I'm") == list{"I", "'m"});
  CHECK(pieces("Ⅻ12") == list{"Ⅻ12"});
  CHECK(pieces("１２３４") == list{"１２３", "４"});
  CHECK(pieces("❤️") == list{"❤", "\xEF\xB8\x8F"});
  CHECK(pieces("1️⃣") == list{"1", "\xEF\xB8\x8F\xE2\x83\xA3"});
  CHECK(pieces("👨‍👩‍👧") == list{"👨", "\xE2\x80\x8D", "👩", "\xE2\x80\x8D", "👧"});
  CHECK(pieces("x \xC2\x85 y") == list{"x", " \xC2\x85", " y"});
  CHECK(pieces("  \xEF\xBB\xBF\tword") == list{" ", " ", "\xEF\xBB\xBF", "\tword"});
}

TEST_CASE("numbers are cut in groups of three from the left before anything else", "[tokenizer]") {
  CHECK(pieces("1234567") == list{"123", "456", "7"});
  CHECK(pieces("3.14") == list{"3", ".", "14"});
  CHECK(pieces("1,000") == list{"1", ",", "000"});
  CHECK(pieces(" 123") == list{" ", "123"});
  CHECK(pieces("abc123def") == list{"abc", "123", "def"});
  // Other Unicode numbers count too: Arabic-Indic, Devanagari, superscript, vulgar fraction, circled.
  CHECK(pieces("٣४²½①") == list{"٣४²", "½①"});
}

TEST_CASE("the CJK split takes only U+4E00-9FA5 and kana", "[tokenizer]") {
  CHECK(pieces("中文abc") == list{"中文", "abc"});
  CHECK(pieces(" 中文") == list{" ", "中文"});
  CHECK(pieces("㐀 𠀀") == list{"㐀", " 𠀀"});
  // The comma U+FF0C is punctuation outside the class: its own piece between the two ideographs.
  CHECK(pieces("中，文") == list{"中", "，", "文"});
  // Katakana, the middle dot (punctuation) and the long vowel mark (a letter) are all in the class, so the run is
  // one piece for the second split, which the main split then cuts; halfwidth katakana are ordinary letters.
  CHECK(pieces("カタ・カナー") == list{"カタ", "・", "カナー"});
  CHECK(pieces(" ｶﾀｶﾅ") == list{" ｶﾀｶﾅ"});
  // U+9FA6 is past the class end: a letter that takes the space before it.
  CHECK(pieces(" \xE9\xBE\xA6") == list{" \xE9\xBE\xA6"});
}

TEST_CASE("alternatives are tried in order and the lookahead leaves the last space", "[tokenizer]") {
  // Before a control character two spaces become two pieces; before digits they stay one.
  CHECK(pieces("a  \x01") == list{"a", " ", " ", "\x01"});
  CHECK(pieces("a  123") == list{"a", "  ", "123"});
  // Only U+0020 can lead punctuation; a tab or NBSP leads letters but not punctuation.
  CHECK(pieces("\t(") == list{"\t", "("});
  CHECK(pieces("\xC2\xA0word") == list{"\xC2\xA0word"});
  // At the space, the punctuation alternative already matches " (" before "(x" could be considered.
  CHECK(pieces(" (x") == list{" (", "x"});
  // ASCII punctuation glued to ASCII letters wins over punctuation runs; non-ASCII letters do not glue.
  CHECK(pieces(".NET") == list{".NET"});
  CHECK(pieces("'é") == list{"'", "é"});
  CHECK(pieces("#include") == list{"#include"});
  // Punctuation runs take trailing CR/LF; whitespace ending in line breaks stops after the last one.
  CHECK(pieces(".\n\n") == list{".\n\n"});
  CHECK(pieces("\r\n") == list{"\r\n"});
  CHECK(pieces("x \n \n y") == list{"x", " \n \n", " y"});
}

TEST_CASE("White_Space and CR/LF are taken from Unicode, not from a language's whitespace class", "[tokenizer]") {
  // U+0085 is whitespace but not a line break: it leads a letter like a space does.
  CHECK(pieces("\xC2\x85word") == list{"\xC2\x85word"});
  // U+001C and U+200B are not whitespace: they are gaps of their own.
  CHECK(pieces("a \x1C b") == list{"a", " ", "\x1C", " b"});
  CHECK(pieces("a\xE2\x80\x8B b") == list{"a", "\xE2\x80\x8B", " b"});
  // U+3000 ideographic space is whitespace.
  CHECK(pieces("\xE3\x80\x80\xE3\x80\x80x") == list{"\xE3\x80\x80", "\xE3\x80\x80x"});
}

TEST_CASE("marks join letters and can start a piece", "[tokenizer]") {
  // e + combining acute stays one letter run; a combining accent after a digit starts its own piece.
  CHECK(pieces("e\xCC\x81t\xC3\xA9") == list{"e\xCC\x81t\xC3\xA9"});
  CHECK(pieces("5\xCC\x81") == list{"5", "\xCC\x81"});
  CHECK(pieces("!\xCC\x81x") == list{"!", "\xCC\x81x"});
}

TEST_CASE("category tables are Unicode 16.0", "[tokenizer]") {
  // Garay U+10D50 and Kirat Rai U+16D43 are 16.0 letters: a space before them joins them.
  CHECK(pieces(" \xF0\x90\xB5\x90") == list{" \xF0\x90\xB5\x90"});
  CHECK(pieces(" \xF0\x96\xB5\x83") == list{" \xF0\x96\xB5\x83"});
  // CJK Ext J U+32AED is a 17.0 addition, unassigned in 16.0: the space stays alone.
  CHECK(pieces(" \xF0\xB2\xAB\xAD") == list{" ", "\xF0\xB2\xAB\xAD"});
}

TEST_CASE("pieces always cover the text exactly", "[tokenizer]") {
  std::string text = "Mixed: 123 中文 ｶﾅ \t\r\n😀‍ x\xC2\x85\xEF\xBB\xBF end  ";
  std::string joined;
  for (const auto& p : pieces(text)) {
    CHECK(!p.empty());
    joined += p;
  }
  CHECK(joined == text);
  CHECK(pieces("").empty());
}
