#include "office_strip/field_codes.h"

namespace mukaika::office_strip {
namespace {

// Fields that only format what is already in the document. Not here on
// purpose: ASK and FILLIN (prompt the reader), SET/DOCVARIABLE (macro data),
// GOTOBUTTON/MACROBUTTON (run on double click), RD (reads another file),
// AUTOTEXT/AUTOTEXTLIST/GLOSSARY (pull in template content), PRINT (sends
// raw printer codes), PRIVATE, ADDIN, SHAPE, EMBED (wrap objects), and every
// field that reaches outside the file.
constexpr std::string_view kAllowed[] = {
    "=",          "ADVANCE",      "AUTHOR",      "AUTONUM",      "AUTONUMLGL",   "AUTONUMOUT",
    "BIBLIOGRAPHY", "BIDIOUTLINE", "CITATION",   "COMMENTS",     "COMPARE",      "CREATEDATE",
    "DATE",       "DOCPROPERTY",  "EDITTIME",    "EQ",           "FILENAME",     "FILESIZE",
    "FORMCHECKBOX", "FORMDROPDOWN", "FORMTEXT",  "IF",           "INDEX",        "INFO",
    "KEYWORDS",   "LASTSAVEDBY",  "LISTNUM",     "MERGEFIELD",   "MERGEREC",     "MERGESEQ",
    "NEXT",       "NEXTIF",       "NOTEREF",     "NUMCHARS",     "NUMPAGES",     "NUMWORDS",
    "PAGE",       "PAGEREF",      "PRINTDATE",   "REF",          "REVNUM",       "SAVEDATE",
    "SECTION",    "SECTIONPAGES", "SEQ",         "SKIPIF",       "STYLEREF",     "SUBJECT",
    "SYMBOL",     "TA",           "TC",          "TEMPLATE",     "TIME",         "TITLE",
    "TOA",        "TOC",          "USERADDRESS", "USERINITIALS", "USERNAME",     "XE",
    "GREETINGLINE", "ADDRESSBLOCK", "BARCODE",
};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }

}  // namespace

std::string field_type(std::string_view instruction) {
  std::size_t i = 0;
  while (i < instruction.size() && is_space(instruction[i])) ++i;
  if (i < instruction.size() && instruction[i] == '=') return "=";
  std::string type;
  while (i < instruction.size() && !is_space(instruction[i]) && instruction[i] != '\\' && instruction[i] != '"') {
    char c = instruction[i++];
    if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
    type += c;
  }
  return type;
}

bool field_allowed(std::string_view instruction) {
  const std::string type = field_type(instruction);
  for (std::string_view allowed : kAllowed)
    if (type == allowed) return true;
  return false;
}

bool field_is_dde(std::string_view instruction) {
  const std::string type = field_type(instruction);
  return type == "DDE" || type == "DDEAUTO";
}

}  // namespace mukaika::office_strip
